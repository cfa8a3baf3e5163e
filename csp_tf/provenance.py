"""What a shipped model records about how it was made, without naming any machine's paths.

* ``config_hash``: 12 hex digits of the result-deciding parts of an ``ExperimentConfig`` (the
  experiment protocol's fingerprint: where the data lives and logging settings left out), so two
  models with the same hash were trained with the same recipe.
* ``data_fingerprint``: 16 hex digits of a data root's ``metadata.json`` without the manifest
  paths and the backbone settings: class names and counts, rows and byte sizes of every shard,
  split fractions and the per-dimension feature mean/std over every row. The same data ingested
  into another directory (or bucket) has the same fingerprint; a changed row changes the shard
  sizes or the feature statistics.
* ``portable_command``: a command line with the paths under the working directory made
  relative and any other absolute path cut to its last part.

Nothing here imports TensorFlow except ``data_fingerprint``'s reader (for gs:// roots).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from typing import Any, Dict, Optional, Sequence

from csp_tf.configs import ExperimentConfig
from csp_tf.experiments.methods import config_fingerprint

# metadata.json keys that name where things were, not what the data is.
_LOCATION_KEYS = ("manifests", "backbone")


def config_hash(cfg: ExperimentConfig) -> str:
    """The 12-hex-digit fingerprint of ``cfg``'s result-deciding fields (as the experiment
    protocol computes it for its stages)."""
    text = json.dumps(config_fingerprint(cfg), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def metadata_fingerprint(metadata: Dict[str, Any]) -> str:
    """16 hex digits of a parsed ``metadata.json`` without its location keys."""
    content = {k: v for k, v in metadata.items() if k not in _LOCATION_KEYS}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ProvenanceError(ValueError):
    """The data root (or its metadata) needed for a fingerprint is missing or unreadable."""


def data_fingerprint(data_root: str) -> str:
    """The fingerprint of the data root's ``metadata.json`` (local path or gs://)."""
    import tensorflow as tf

    path = os.path.join(data_root, "metadata.json") if "://" not in data_root else \
        data_root.rstrip("/") + "/metadata.json"
    if not data_root or not tf.io.gfile.exists(path):
        raise ProvenanceError(f"cannot fingerprint the training data: {path!r} does not exist "
                              "(give the data root the model was trained on)")
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            metadata = json.load(f)
    except ValueError as e:
        raise ProvenanceError(f"{path}: not a JSON metadata file ({e})") from None
    if not isinstance(metadata, dict) or "splits" not in metadata:
        raise ProvenanceError(f"{path}: not a csp-tf metadata file (no 'splits')")
    return metadata_fingerprint(metadata)


def portable_command(argv: Sequence[str], cwd: Optional[str] = None) -> str:
    """``argv`` as one shell line: ``csp-tf`` for the program, paths under ``cwd`` relative to
    it, other absolute paths (also in ``--flag=/path``) cut to their last part."""
    cwd = os.path.abspath(cwd or os.getcwd())

    def portable(arg: str) -> str:
        flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if os.path.isabs(value):
            rel = os.path.relpath(value, cwd)
            value = rel if not rel.startswith("..") else os.path.basename(value.rstrip("/"))
        return flag + eq + value

    args = ["csp-tf"] + [portable(a) for a in list(argv)[1:]]
    return " ".join(shlex.quote(a) for a in args)
