"""Fault injection on publishing a model: a full disk during an export or a push, and a second
writer of the same serving base path. The version being served stays intact and loadable, no
partial version directory is ever left, and a second writer is refused naming the first."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import get_preset
from csp_tf.diskspace import DiskFullError
from csp_tf.export import export_saved_model, push_saved_model
from csp_tf.locks import LockHeldError
from csp_tf.models import build_csp_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
F, C = 6, 5
LON_LAT = np.array([[2.35, 48.86], [-47.9, -15.8]], np.float32)


def _model():
    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = C, F
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    return build_csp_model(cfg), cfg


def _prior(version_dir: str) -> np.ndarray:
    loaded = tf.saved_model.load(version_dir)
    prior = loaded.signatures["location_prior"](lon_lat=tf.constant(LON_LAT))
    return prior["probabilities"].numpy()


def _entries(base: str) -> list:
    return sorted(os.listdir(base))


def test_export_on_a_full_disk_names_the_path_and_keeps_the_served_version(small_fs):
    model, cfg = _model()
    base = os.path.join(small_fs.mount(16 << 20), "csp")
    served = export_saved_model(model, base, config=cfg, version=1, warmup=False)
    want = _prior(served)
    filler = small_fs.fill(os.path.dirname(base), 16 << 10)

    with pytest.raises(DiskFullError) as err:
        export_saved_model(model, base, config=cfg, version=2, warmup=False)
    message = str(err.value)
    for part in (os.path.join(base, ".tmp-2-"), "needs about", "free there", "unchanged"):
        assert part in message, (part, message)
    assert _entries(base) == ["1"]  # no partial version 2, no temporary directory
    np.testing.assert_array_equal(_prior(served), want)  # the served version still answers
    assert os.path.exists(filler)


def _artifacts(model_dir: str, push_uri: str, blessed: bool = True):
    """A real Model / ModelBlessing / PushedModel artifact set, as the Pusher receives it."""
    from tfx.types import standard_artifacts, standard_component_specs as specs

    model = standard_artifacts.Model()
    model.uri = model_dir
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = os.path.join(push_uri, "..", "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = push_uri
    return ({specs.MODEL_KEY: [model], specs.MODEL_BLESSING_KEY: [blessing]},
            {specs.PUSHED_MODEL_KEY: [pushed]})


def _push_properties(base: str) -> dict:
    from tfx.proto import pusher_pb2
    from tfx.types import standard_component_specs as specs
    from tfx.utils import proto_utils

    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
    return {specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)}


def test_tfx_push_on_a_full_disk_names_the_need_and_leaves_no_partial_version(tmp_path,
                                                                             small_fs):
    """The pipeline's Pusher executor, run on real artifacts into a nearly full serving base:
    DiskFullError naming the bytes needed and free; only the served version is there. With
    space again it pushes the whole version and marks the artifact; unblessed, it pushes
    nothing."""
    from tfx_pipeline.components import AtomicPushExecutor

    model, cfg = _model()
    trainer_out = str(tmp_path / "model")  # the Trainer's Model artifact: <uri>/Format-Serving
    write = export_saved_model(model, trainer_out, config=cfg, version=1, warmup=False)
    source = os.path.join(trainer_out, "Format-Serving")
    os.rename(write, source)
    base = os.path.join(small_fs.mount(16 << 20), "csp")
    served = push_saved_model(source, base, version=1)
    want = _prior(served)
    filler = small_fs.fill(os.path.dirname(base), 16 << 10)

    inputs, outputs = _artifacts(trainer_out, str(tmp_path / "pushed"))
    with pytest.raises(DiskFullError) as err:
        AtomicPushExecutor().Do(inputs, outputs, _push_properties(base))
    message = str(err.value)
    for part in ("Format-Serving", base, "needs about", "free there", "unchanged"):
        assert part in message, (part, message)
    assert _entries(base) == ["1"]
    np.testing.assert_array_equal(_prior(served), want)

    os.remove(filler)
    AtomicPushExecutor().Do(inputs, outputs, _push_properties(base))
    (version,) = set(_entries(base)) - {"1"}
    pushed = outputs["pushed_model"][0]
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == os.path.join(base, version)
    np.testing.assert_array_equal(_prior(os.path.join(base, version)), want)

    inputs, outputs = _artifacts(trainer_out, str(tmp_path / "pushed2"), blessed=False)
    AtomicPushExecutor().Do(inputs, outputs, _push_properties(base))  # not blessed: no push
    assert outputs["pushed_model"][0].get_int_custom_property("pushed") == 0
    assert _entries(base) == sorted(["1", version])


# A real second process that holds a serving base path as a running push does (csp_tf.locks).
_HOLD = ("import sys, time; from csp_tf.locks import acquire; "
         "acquire(sys.argv[1], 'csp-tf push'); print('held', flush=True); time.sleep(600)")


def test_a_second_export_into_the_same_serving_base_is_refused_naming_the_first(tmp_path):
    """While another process pushes into the serving base path, `export_saved_model` and
    `push_saved_model` are refused naming it and write nothing; once that process is gone
    (killed: its lock is stale), the push goes in whole."""
    model, cfg = _model()
    source = export_saved_model(model, str(tmp_path / "source"), version=1, warmup=False)
    base = str(tmp_path / "serving")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, base], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for write in (lambda: export_saved_model(model, base, version=7, warmup=False),
                      lambda: push_saved_model(source, base, version=8)):
            with pytest.raises(LockHeldError) as err:
                write()
            message = str(err.value)
            for part in (f"pid {holder.pid}", "csp-tf push (pid", "started", "command: -c",
                         str(tmp_path / ".serving.lock")):
                assert part in message, (part, message)
        assert not os.path.exists(base) or _entries(base) == []
    finally:
        holder.kill()
        holder.wait()
    push_saved_model(source, base, version=8)
    assert _entries(base) == ["8"]
    np.testing.assert_array_equal(_prior(os.path.join(base, "8")), _prior(source))
