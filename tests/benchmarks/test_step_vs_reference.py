"""benchmarks/step_vs_reference.py: the reference command's output parsing, the ratios, and one
interleaved run against a stand-in reference command (no TensorFlow step: ``run`` is not called)."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load():
    path = os.path.join(REPO, "benchmarks", "step_vs_reference.py")
    spec = importlib.util.spec_from_file_location("step_vs_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


svr = _load()


def test_parse_takes_the_last_json_line_with_ms_per_step():
    out = "warming up\n{\"ms_per_step\": 120.5}\nnoise\n{\"ms_per_step\": 98.25, \"threads\": 2}\n"
    assert svr.parse_reference_ms(out) == 98.25


def test_parse_skips_bad_lines_and_refuses_output_without_a_figure():
    assert svr.parse_reference_ms("{\"ms_per_step\": 50}\n{not json}\n{\"other\": 1}") == 50.0
    for bad in ("", "no json here", "{\"ms_per_step\": 0}", "{\"ms_per_step\": \"fast\"}"):
        with pytest.raises(ValueError):
            svr.parse_reference_ms(bad)


def test_summarize_takes_the_best_round_of_each_side():
    s = svr.summarize(ours_ms=[60.0, 50.0, 55.0], ref_ms=[110.0, 100.0, 120.0],
                      peaks_gflops=[180.0, 200.0], step_gflop=8.0)
    assert s["ours_ms"] == 50.0 and s["ours_ms_median"] == 55.0
    assert s["reference_ms"] == 100.0 and s["reference_ms_median"] == 110.0
    assert s["speedup_vs_reference"] == pytest.approx(2.0)
    assert s["ours_gflops"] == pytest.approx(160.0)  # 8 GFLOP in 50 ms
    assert s["fraction_of_gemm_peak"] == pytest.approx(0.8)  # 160 / 200


def test_summarize_without_a_reference_has_no_speedup():
    s = svr.summarize([40.0, 42.0], [], [100.0], 2.0)
    assert "speedup_vs_reference" not in s and s["fraction_of_gemm_peak"] == pytest.approx(0.5)


def test_run_reference_runs_the_shell_command_and_reports_failures():
    ok = f"{sys.executable} -c \"print('x'); print('{{\\\"ms_per_step\\\": 7.5}}')\""
    assert svr.run_reference(ok) == 7.5
    with pytest.raises(RuntimeError):
        svr.run_reference(f"{sys.executable} -c \"import sys; sys.exit(2)\"")


def test_report_names_both_ratios_and_the_load():
    res = {"setup": {"mode": "fp32_xla_on", "load_avg_start": [0.1, 0.2, 0.3],
                     "load_avg_end": [0.2, 0.2, 0.3]},
           **svr.summarize([50.0], [100.0], [200.0], 8.0)}
    text = svr.report(res)
    assert "0.80 of the fp32 GEMM peak" in text and "2.00x" in text and "load average" in text


def test_out_goes_into_a_folder_that_does_not_exist_yet(tmp_path, monkeypatch):
    res = {"setup": {"mode": "fp32_xla_on", "load_avg_start": [0.1, 0.2, 0.3],
                     "load_avg_end": [0.2, 0.2, 0.3]},
           **svr.summarize([50.0], [100.0], [200.0], 8.0)}
    monkeypatch.setattr(svr, "run", lambda *args: res)
    out = tmp_path / "new" / "folder" / "step.json"
    assert svr.main(["--out", str(out)]) == 0
    import json

    assert json.loads(out.read_text())["setup"]["mode"] == "fp32_xla_on"
