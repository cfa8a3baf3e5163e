"""Shared constructor/config of the encoders built on the ``_cal_freq_list`` schedule
(docs/reference.md §2.1).

Used by theory / theorynorm / theorydiag and the Sphere2Vec family. Not registered itself.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np
import tensorflow as tf

from csp_tf.encoders.base import PositionEncoder, geometric_frequencies


class ScheduledEncoder(PositionEncoder):
    """Holds S, the radii, ``freq_init`` and the float64 frequencies f_s.

    The frequencies are saved in the config, so a ``random`` schedule reloads as the same
    function (csp-tf saves every random part; the reference does not, docs/reference.md §2.1).
    """

    config_keys = ("frequency_num", "min_radius", "max_radius", "freq_init", "seed", "frequencies")

    def __init__(self, frequency_num: int = 32, min_radius: float = 0.1, max_radius: float = 360.0,
                 freq_init: str = "geometric", seed: int = 0,
                 frequencies: Optional[List[float]] = None, **kwargs):
        super().__init__(**kwargs)
        self.frequency_num = int(frequency_num)
        self.min_radius = float(min_radius)
        self.max_radius = float(max_radius)
        self.freq_init = freq_init
        self.seed = int(seed)
        if frequencies is None:
            frequencies = geometric_frequencies(self.frequency_num, self.min_radius,
                                                self.max_radius, freq_init, self.seed).tolist()
        if len(frequencies) != self.frequency_num:
            raise ValueError(f"got {len(frequencies)} frequencies for frequency_num={self.frequency_num}")
        self.frequencies = [float(f) for f in frequencies]
        self._freqs = tf.constant(np.asarray(self.frequencies, np.float64))
