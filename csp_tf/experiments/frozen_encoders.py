"""The encoders of the embedding benchmark (csp_tf.experiments.embedding_suite): how a frozen
location encoder becomes a ``(N, 2) lon/lat degrees -> (N, D)`` function, and how fast each runs.

``sincos`` is the coordinates themselves; ``KerasEncoder`` runs any Keras model (a shipped
encoder, an encoder directory, GeoCLIP's port) with XLA off or on, whichever is faster here;
``points_per_second`` times them in interleaved rounds.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Callable, Dict, Mapping, Sequence, Tuple

import numpy as np

Encoder = Callable[[np.ndarray], np.ndarray]  # (N, 2) lon/lat degrees float32 -> (N, D)


def uniform_sphere(n: int, seed: int) -> np.ndarray:
    """(n, 2) area-uniform lon/lat degrees."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(-180.0, 180.0, n)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return np.stack([lon, lat], 1)


def sincos(lon_lat: np.ndarray) -> np.ndarray:
    """[sin λ, cos λ, sin φ, cos φ]: the coordinates themselves, continuous across the dateline."""
    rad = np.radians(np.asarray(lon_lat, np.float64))
    return np.concatenate([np.sin(rad), np.cos(rad)], 1).astype(np.float32)


class KerasEncoder:
    """A (B, 2) -> (B, D) Keras model as an Encoder, run in fixed batches by one traced graph,
    with XLA (``jit_compile``) off or on, so every encoder runs at its best on the machine (a
    small MLP gains ~3× from XLA on CPU; GeoCLIP's does not). ``mode="auto"`` is settled by
    points_per_second, which times both modes in its interleaved rounds (on the first call if
    nothing timed it before: two rounds on 8192 points). The embeddings of the two modes differ
    only by float rounding."""

    MODES = ("xla off", "xla on")

    def __init__(self, model, batch_size: int = 4096, mode: str = "auto"):
        import tensorflow as tf

        if mode not in ("auto",) + self.MODES:
            raise ValueError(f"mode {mode!r}: auto, 'xla off' or 'xla on'")
        self.batch_size, self.mode = batch_size, mode
        self._fns = {m: tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                                    jit_compile=(m == "xla on"))
                     for m in self.MODES}

    def run(self, mode: str, lon_lat: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        out = [self._fns[mode](tf.constant(lon_lat[i:i + self.batch_size], tf.float32)).numpy()
               for i in range(0, len(lon_lat), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def _choose(self) -> None:
        points_per_second({"encoder": self}, n=8192, rounds=2)  # sets self.mode

    def __call__(self, lon_lat: np.ndarray) -> np.ndarray:
        if self.mode == "auto":
            self._choose()
        return self.run(self.mode, np.asarray(lon_lat, np.float32))


def _seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def keras_encoder(model, batch_size: int = 4096, mode: str = "auto") -> Encoder:
    """A (B, 2) -> (B, D) Keras model as an Encoder (KerasEncoder)."""
    return KerasEncoder(model, batch_size, mode)


def resolve_encoders(specs: Sequence[str], cache_dir: str) -> Dict[str, Encoder]:
    """``sincos``, ``places`` (or any shipped name), ``geoclip``, ``NAME=PATH`` (an encoder dir
    or .keras file, csp_tf.pretrained.load_location_encoder)."""
    from csp_tf import pretrained

    out: Dict[str, Encoder] = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        if name == "sincos" and not path:
            out[name] = sincos
        elif name == "geoclip" and not path:
            from csp_tf.pretrained_geoclip import load_geoclip_encoder

            out[name] = keras_encoder(load_geoclip_encoder(cache_dir=cache_dir))
        else:
            out[name] = keras_encoder(pretrained.load_location_encoder(path or name))
    return out


def points_per_second(encoders: Mapping[str, Encoder], n: int = 20000, rounds: int = 3
                      ) -> Dict[str, float]:
    """Throughput of each encoder on ``n`` uniform points, after one warm-up call each; the
    encoders take turns for ``rounds`` rounds (so a busy machine slows them alike), best kept.
    A KerasEncoder left on ``auto`` is timed in both of its modes, in the same turns; the faster
    is its figure and becomes its mode."""
    pts = uniform_sphere(n, seed=9).astype(np.float32)
    runs: Dict[Tuple[str, str], Callable[[np.ndarray], np.ndarray]] = {}
    for name, encode in encoders.items():
        if isinstance(encode, KerasEncoder) and encode.mode == "auto":
            for mode in KerasEncoder.MODES:
                runs[(name, mode)] = functools.partial(encode.run, mode)
        else:
            runs[(name, getattr(encode, "mode", "numpy"))] = encode
    for run in runs.values():
        run(pts[:4096])
    best = {key: math.inf for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            best[key] = min(best[key], _seconds(lambda: run(pts)))
    speeds: Dict[str, float] = {}
    for (name, mode), sec in sorted(best.items(), key=lambda kv: kv[1]):
        if name not in speeds:  # the fastest mode of each encoder
            speeds[name] = n / sec
            if isinstance(encoders[name], KerasEncoder) and encoders[name].mode == "auto":
                encoders[name].mode = mode
    return {name: speeds[name] for name in encoders}
