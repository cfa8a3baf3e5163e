"""Fault injection on publishing a model: a full disk during an export or a push, and a second
writer of the same serving base path. The version being served stays intact and loadable, no
partial version directory is ever left, and a second writer is refused naming the first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

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
    return loaded.signatures["location_prior"](lon_lat=tf.constant(LON_LAT))["probabilities"].numpy()


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

    os.remove(filler)
    assert _entries(os.path.dirname(export_saved_model(model, base, config=cfg, version=2,
                                                       warmup=False))) == ["1", "2"]


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


def test_tfx_push_on_a_full_disk_names_the_need_and_leaves_no_partial_version(tmp_path, small_fs):
    """The pipeline's Pusher executor, run on real artifacts into a nearly full serving base:
    DiskFullError naming the bytes needed and free; only the served version is there."""
    from tfx_pipeline.components import AtomicPushExecutor

    model, cfg = _model()
    trainer_out = str(tmp_path / "model")  # the Trainer's Model artifact: <uri>/Format-Serving
    write = export_saved_model(model, trainer_out, config=cfg, version=1, warmup=False)
    os.rename(write, os.path.join(trainer_out, "Format-Serving"))
    base = os.path.join(small_fs.mount(16 << 20), "csp")
    served = push_saved_model(os.path.join(trainer_out, "Format-Serving"), base, version=1)
    want = _prior(served)
    small_fs.fill(os.path.dirname(base), 16 << 10)

    inputs, outputs = _artifacts(trainer_out, str(tmp_path / "pushed"))
    with pytest.raises(DiskFullError) as err:
        AtomicPushExecutor().Do(inputs, outputs, _push_properties(base))
    message = str(err.value)
    for part in ("Format-Serving", base, "needs about", "free there", "unchanged"):
        assert part in message, (part, message)
    assert _entries(base) == ["1"]
    np.testing.assert_array_equal(_prior(served), want)


def test_tfx_push_writes_the_whole_version_and_marks_the_artifact(tmp_path):
    from tfx_pipeline.components import AtomicPushExecutor

    model, cfg = _model()
    trainer_out = str(tmp_path / "model")
    os.rename(export_saved_model(model, trainer_out, config=cfg, version=1, warmup=False),
              os.path.join(trainer_out, "Format-Serving"))
    base = str(tmp_path / "serving")
    inputs, outputs = _artifacts(trainer_out, str(tmp_path / "pushed"))
    AtomicPushExecutor().Do(inputs, outputs, _push_properties(base))
    (version,) = _entries(base)
    pushed = outputs["pushed_model"][0]
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == os.path.join(base, version)
    np.testing.assert_array_equal(_prior(os.path.join(base, version)),
                                  _prior(os.path.join(trainer_out, "Format-Serving")))

    inputs, outputs = _artifacts(trainer_out, str(tmp_path / "pushed2"), blessed=False)
    AtomicPushExecutor().Do(inputs, outputs, _push_properties(base))  # not blessed: no push
    assert outputs["pushed_model"][0].get_int_custom_property("pushed") == 0
    assert _entries(base) == [version]


def test_a_second_export_into_the_same_serving_base_is_refused_naming_the_first(tmp_path):
    """A real second process: `csp-tf export` is frozen (SIGSTOP) while it writes the serving
    base; a push into that base is refused naming its pid, host and command; the export then
    completes and its version is whole."""
    model, cfg = _model()
    stage = tmp_path / "stage"
    stage.mkdir()
    model.save(str(stage / "model.keras"))
    source = export_saved_model(model, str(tmp_path / "source"), version=1, warmup=False)
    base = str(tmp_path / "serving")
    cmd = [sys.executable, "-m", "csp_cli", "export", "--model", str(stage), "--export-base",
           base, "--version", "7"]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lock_file = str(tmp_path / ".serving.lock")
    try:
        deadline, holder = time.time() + 180, None
        while holder is None and time.time() < deadline and proc.poll() is None:
            try:
                record = json.loads(open(lock_file).read())
                holder = record if record.get("pid") == proc.pid else None
            except (OSError, ValueError):
                time.sleep(0.01)
        assert holder is not None, f"the export never locked {base} (exit {proc.poll()})"
        os.killpg(proc.pid, signal.SIGSTOP)
        with pytest.raises(LockHeldError) as err:
            push_saved_model(source, base, version=8)
        message = str(err.value)
        for part in (f"pid {proc.pid}", f"on host {holder['host']}", holder["started"],
                     "csp-tf export", "--export-base", lock_file):
            assert part in message, (part, message)
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    out, errors = proc.communicate(timeout=300)
    assert proc.returncode == 0, errors[-2000:]
    assert _entries(base) == ["7"]  # the refused push wrote nothing; the export is whole
    assert os.path.exists(os.path.join(base, "7", "saved_model.pb"))
    assert not os.path.exists(lock_file)
    push_saved_model(source, base, version=8)  # once the export is done, the push goes in
    assert _entries(base) == ["7", "8"]
