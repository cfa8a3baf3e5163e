"""The one loader of csp-tf's saved Keras models (``model.keras``, ``location_encoder.keras``)."""

from __future__ import annotations

import os

import keras

STAGE_MODEL_FILE = "model.keras"  # what pretrain/finetune write into their output dir


class ModelLoadError(FileNotFoundError):
    """No loadable model at a path (missing, or not a readable ``.keras`` file); names the path.

    A FileNotFoundError, so callers that report a missing model as a user error treat an
    unreadable one the same way.
    """


def load_csp_model(path_or_dir: str, filename: str = STAGE_MODEL_FILE) -> keras.Model:
    """Loads ``path_or_dir`` if it is a ``.keras`` file, else ``<path_or_dir>/<filename>``.

    CSPModel and its layers are registered first (Keras imports the module of any other
    registered class, e.g. ``csp_tf.pretrained``'s, from the saved config itself).

    Raises:
      ModelLoadError: the file is missing or cannot be loaded (the message names it).
    """
    import csp_tf.models  # noqa: F401  registers CSPModel and its layers

    path = os.fspath(path_or_dir)
    if not path.endswith(".keras"):
        path = os.path.join(path, filename)
    if not os.path.isfile(path):
        raise ModelLoadError(f"no Keras model at {path}: pass a pretrain/finetune output dir "
                             f"or a .keras file")
    try:
        return keras.saving.load_model(path)
    except Exception as exc:  # BadZipFile, ValueError, TypeError, ...: all mean "not loadable"
        raise ModelLoadError(f"cannot load the Keras model {path}: {type(exc).__name__}: "
                             f"{exc}") from exc
