"""csp_tf.experiments.frozen_encoders: a Keras encoder in either XLA mode gives one embedding."""

from __future__ import annotations

import numpy as np
import pytest

from csp_tf.experiments import frozen_encoders as fe


def test_keras_encoder_modes_give_the_same_embedding():
    from csp_tf.configs import get_preset
    from csp_tf.pretrained import StandaloneLocationEncoder

    le = get_preset("demo").location_encoder
    le.hidden_dim, le.num_filts = 16, 8
    model = StandaloneLocationEncoder(le)
    pts = fe.uniform_sphere(300, seed=5).astype(np.float32)
    off = fe.keras_encoder(model, batch_size=128, mode="xla off")(pts)
    on = fe.keras_encoder(model, batch_size=128, mode="xla on")(pts)
    auto = fe.keras_encoder(model, batch_size=128)
    assert auto.mode == "auto"
    np.testing.assert_allclose(auto(pts), off, atol=1e-4)
    assert auto.mode in ("xla off", "xla on")
    np.testing.assert_allclose(on, off, atol=1e-4)
    with pytest.raises(ValueError, match="mode 'fast'"):
        fe.keras_encoder(model, mode="fast")
