"""A new version pushed while serving: status, metadata and predictions switch, no errors."""

import os
import threading

import numpy as np
import pytest
import tensorflow as tf

from serving import contract
from serving.client import CSPServingClient

LON_LAT = np.array([[2.35, 48.86], [-47.9, -15.8]], np.float32)


@pytest.fixture
def base_path(tmp_path, standin_versions, push):
    base = str(tmp_path / "csp")
    os.makedirs(base)
    push(standin_versions[1], base, 1)
    return base


def _prior(version_dir: str) -> np.ndarray:
    model = tf.saved_model.load(version_dir)
    return model.signatures[contract.LOCATION_PRIOR](lon_lat=tf.constant(LON_LAT))[
        contract.PROBABILITIES].numpy()


def test_pushing_version_2_switches_without_errors(base_path, standin_versions, push,
                                                   serve_base_path):
    want = {v: _prior(d) for v, d in standin_versions.items()}
    assert not np.allclose(want[1], want[2], atol=1e-3)
    with serve_base_path(base_path) as target, CSPServingClient(target.address) as client:
        np.testing.assert_allclose(client.location_prior(LON_LAT), want[1], atol=1e-5)

        # Clients keep querying while version 2 lands; every answer is v1's or v2's.
        stop, failures, seen = threading.Event(), [], set()

        def hammer():
            with CSPServingClient(target.address, retries=0) as c:
                while not stop.is_set():
                    try:
                        got = c.location_prior(LON_LAT)
                        seen.add(c.last_version)
                        np.testing.assert_allclose(got, want[c.last_version], atol=1e-5)
                    except Exception as exc:  # noqa: BLE001 - collected and asserted below
                        failures.append(repr(exc))

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            push(standin_versions[2], base_path, 2)
            assert client.wait_until_available(version=2, timeout_s=30) == 2
            # Wait until v2 is the one answering "latest" (v1 unloads after v2 is up).
            for _ in range(300):
                client.location_prior(LON_LAT)
                if client.last_version == 2:
                    break
                threading.Event().wait(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        assert failures == []
        assert 1 in seen

        np.testing.assert_allclose(client.location_prior(LON_LAT), want[2], atol=1e-5)
        assert client.last_version == 2
        assert client.metadata()["version"] == 2
        states = {s["version"]: s["state"] for s in client.status()}
        assert states[2] == "AVAILABLE"
        assert states.get(1, "END") in ("UNLOADING", "END")


# --- odd version directory names and real status codes --------------------------------------
def test_version_names_tf_serving_would_skip_are_ignored(tmp_path):
    from serving.model_manager import parse_version

    assert [parse_version(n) for n in ("0", "1", "12", str(2**63 - 1))] == [0, 1, 12, 2**63 - 1]
    for name in ("²", "١٢", "012", "-1", "+1", " 1", "1.0", str(2**63), "9" * 40, ""):
        assert parse_version(name) is None, name


def test_odd_directories_do_not_stop_polling(tmp_path, standin_versions, push, serve_base_path):
    """``²`` (isdigit() is true, int() fails) and a version above int64, both holding a
    saved_model.pb, are ignored; polling goes on and picks up version 2."""
    import shutil

    base = str(tmp_path / "csp")
    os.makedirs(base)
    push(standin_versions[1], base, 1)
    for odd in ("²", str(2**63)):
        shutil.copytree(standin_versions[1], os.path.join(base, odd))
    with serve_base_path(base) as target, CSPServingClient(target.address) as client:
        assert [s["version"] for s in client.status()] == [1]
        push(standin_versions[2], base, 2)
        assert client.wait_until_available(version=2, timeout_s=30) == 2
        assert {s["version"] for s in client.status()} <= {1, 2}  # status still answers


def test_status_error_codes_are_the_real_ones(tmp_path, standin_versions, push):
    """OK while AVAILABLE; a failed load reports its cause's code (DATA_LOSS for an unparsable
    saved_model.pb, the warmup request's INVALID_ARGUMENT), never a blanket UNKNOWN."""
    import shutil
    import time

    from csp_tf import warmup
    from serving.dev_server import DevServer

    base = str(tmp_path / "csp")
    os.makedirs(base)
    push(standin_versions[1], base, 1)
    with DevServer(base, poll_interval_s=0.1, num_versions=3) as server, \
            CSPServingClient(server.address) as client:
        assert client.status() == [{"version": 1, "state": "AVAILABLE", "error_code": "OK",
                                    "error_message": ""}]
        broken = os.path.join(base, "2")
        os.makedirs(broken)
        with open(os.path.join(broken, "saved_model.pb"), "wb") as f:
            f.write(b"not a SavedModel")
        bad_warmup = str(tmp_path / "staging3")
        shutil.copytree(standin_versions[1], bad_warmup)
        warmup.write_warmup_requests(bad_warmup, [warmup.make_predict_request(
            "csp", contract.LOCATION_PRIOR, {contract.LON_LAT: np.array([[0.0, 95.0]],
                                                                          np.float32)})])
        os.rename(bad_warmup, os.path.join(base, "3"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = {s["version"]: s for s in client.status()}
            if all(v in states and states[v]["state"] == "END" for v in (2, 3)):
                break
            time.sleep(0.1)
        assert states[1]["state"] == "AVAILABLE" and states[1]["error_code"] == "OK"
        assert states[2]["error_code"] == "DATA_LOSS", states[2]
        assert states[3]["error_code"] == "INVALID_ARGUMENT", states[3]
        assert "warmup" in states[3]["error_message"]
