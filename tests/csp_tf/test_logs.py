"""One logging set-up: our lines on the terminal, everything else (TensorFlow's C++ start-up
lines, FutureWarnings, third-party loggers, child processes) in the log file it names."""

import os
import subprocess
import sys

NOISE = ("Unable to register", "TF-TRT", "FutureWarning", "cuda")

PROBE = """
import logging, os, subprocess, sys, warnings
from csp_tf.logs import command_output
with command_output("probe", verbose={verbose}, log_file=sys.argv[1]):
    os.write(2, b"native line on fd 2\\n")
    subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('child line\\\\n')"])
    warnings.warn("a future warning", FutureWarning)
    logging.getLogger("absl").info("third-party line")
    logging.getLogger("csp_tf.train").info("our line")
    print("an error line", file=sys.stderr)
os.write(2, b"after the command\\n")
"""


def _probe(tmp_path, verbose):
    log = tmp_path / "probe.log"
    out = subprocess.run([sys.executable, "-c", PROBE.format(verbose=verbose), str(log)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stderr, log.read_text()


def test_the_terminal_shows_our_lines_and_the_file_holds_the_rest(tmp_path):
    err, log = _probe(tmp_path, verbose=False)
    lines = err.splitlines()
    assert lines[0] == f"logs: {tmp_path / 'probe.log'} (-v shows them here)"
    assert lines[1].endswith(" our line") and lines[2:] == ["an error line", "after the command"]
    for detail in ("native line on fd 2", "child line", "FutureWarning: a future warning",
                   "INFO absl: third-party line", "INFO csp_tf.train: our line"):
        assert detail in log


def test_verbose_shows_everything_live_and_still_writes_the_file(tmp_path):
    err, log = _probe(tmp_path, verbose=True)
    for detail in ("native line on fd 2", "child line", "third-party line", "our line"):
        assert detail in err
    assert "third-party line" in log and "native line" not in log


def test_a_real_command_prints_only_its_own_lines(tmp_path):
    """`csp-tf config` imports TensorFlow (and Google's packages): their start-up lines, which
    TF_CPP_MIN_LOG_LEVEL=2 does not hide, must land in the log file, not on the terminal."""
    env = dict(os.environ, CSP_TF_LOG_DIR=str(tmp_path))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    out = subprocess.run([sys.executable, "-m", "csp_cli", "config", "--preset", "demo"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert "pretrain:" in out.stdout
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("logs: "), out.stderr
    assert not any(n in out.stderr for n in NOISE)
    path = lines[0].split()[1]
    assert os.path.dirname(path) == str(tmp_path) and os.path.basename(path).startswith("config-")
    log = open(path).read()
    assert any(n in log for n in NOISE), log  # the detail is kept, in the file
