"""`make test` opens with the test run itself: no library notices printed before the first test."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_collecting_the_library_tests_prints_nothing_but_test_ids():
    """Collecting tests/csp_tf imports the CLI, Beam's GCP I/O and with them the Google client
    libraries, whose FutureWarnings about Python 3.11's end of life used to open every
    ``make test``. Collected here with the Makefile's ``-p no:warnings`` (under which
    pytest.ini's ``filterwarnings`` do not apply) and without PYTHONWARNINGS, so only the
    filter of tests/conftest.py stands between them and the terminal."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/csp_tf", "-p", "no:warnings",
                           "-q", "--collect-only"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    output = done.stderr + done.stdout
    assert "Warning" not in output.split("\n\n")[0], output[:2000]
    first = (done.stderr or done.stdout).splitlines()[0]
    assert first.startswith("tests/csp_tf/"), f"output opens with {first!r}, not a test id"
