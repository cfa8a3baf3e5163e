"""Runtime decisions shared by the stages: seeds, XLA, precision, distribution strategy."""

from __future__ import annotations

import json
import logging
import os
import random

import numpy as np
import tensorflow as tf

log = logging.getLogger("csp_tf")


def set_global_seed(seed: int) -> None:
    """Seeds Python, NumPy, TensorFlow and Keras (the steps also use explicit stateless seeds)."""
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    import keras
    keras.utils.set_random_seed(seed)


def has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def use_jit(mode: str) -> bool:
    """``auto`` compiles the steps with XLA where a GPU is present; ``on``/``off`` force it."""
    if mode == "on":
        return True
    if mode == "off":
        return False
    return has_gpu()


def configure_precision(mode: str) -> str:
    """Sets the global Keras dtype policy; returns its name.

    ``auto``: mixed_float16 on GPU (float32 elsewhere); ``on``: mixed_float16; ``off``: float32;
    ``bfloat16``: mixed_bfloat16 (matmuls and activations in bf16, variables in float32; the
    position encoders stay float64 → float32 and the losses cast to float32, so only the
    network's arithmetic changes; no loss scaling needed). Fast on CPUs with AVX512_BF16/AMX
    and on GPUs from Ampere on.
    """
    import keras
    if mode == "bfloat16":
        policy = "mixed_bfloat16"
    else:
        enable = mode == "on" or (mode == "auto" and has_gpu())
        policy = "mixed_float16" if enable else "float32"
    keras.mixed_precision.set_dtype_policy(policy)
    return policy


def make_strategy(kind: str) -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (all local GPUs, or the CPU) or ``multi_worker``
    (MultiWorkerMirroredStrategy configured from the ``TF_CONFIG`` environment variable)."""
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("runtime.distribution='multi_worker' needs the TF_CONFIG environment "
                             "variable (cluster spec and this worker's task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"runtime.distribution={kind!r} is not one of default, mirrored, multi_worker")


def is_chief() -> bool:
    """True on the worker that writes checkpoints, logs and exports: the ``chief`` task if the
    cluster has one, else worker 0; always True without ``TF_CONFIG``."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = tf_config.get("task")
    if not task:
        return True
    if "chief" in tf_config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0
