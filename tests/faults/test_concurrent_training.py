"""A second training run into the same ``--out`` (the same checkpoint directory) while another
process writes it is refused naming that process, before it reads or writes a checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

import csp_cli as cli
from csp_tf.data.ingest import run_ingest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--set", "location_encoder.hidden_dim=32", "--set", "location_encoder.num_filts=16",
        "--set", "pretrain.batch_size=128", "--set", "runtime.progress=false"]
# A real second process that holds <out> as a running `csp-tf pretrain` does (csp_tf.locks).
_HOLD = ("import sys, time; from csp_tf.locks import acquire; "
         "acquire(sys.argv[1], 'csp-tf pretrain'); print('held', flush=True); time.sleep(600)")


def test_a_second_pretrain_into_the_same_out_is_refused_naming_the_first(tmp_path, capsys):
    rng = np.random.default_rng(0)
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,lon,lat,label,features\n" + "".join(
        f"r{i},{rng.uniform(-170, 170):.4f},{rng.uniform(-80, 80):.4f},c{i % 3},"
        f"{' '.join(f'{v:.3f}' for v in rng.normal(size=8))}\n" for i in range(300)))
    root, out = str(tmp_path / "data"), str(tmp_path / "pre")
    run_ingest(str(manifest), root, feature_dim=8, num_shards=1, in_process=True)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, out], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        args = ["pretrain", "--data-root", root, "--out", out, "--epochs", "1"] + TINY
        assert cli.main(args) == 2
        error = capsys.readouterr().err
        for part in (f"pid {holder.pid}", "csp-tf pretrain (pid", "started", "command: -c",
                     str(tmp_path / ".pre.lock")):
            assert part in error, (part, error)
        assert not os.path.exists(os.path.join(out, "checkpoints"))  # nothing was touched
    finally:
        holder.kill()
        holder.wait()
