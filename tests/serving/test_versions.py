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
