"""The GPTQ benchmark command runs on a small layer and prints valid JSON (no timing asserted)."""

import json

import pytest

from labkit.cli import main


def test_bench_gptq_small_shape_json(capsys):
    assert main(["bench-gptq", "--out", "64", "--in", "128", "--tokens", "256", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (layer,) = report["layers"]
    assert layer["weight_shape"] == [64, 128] and layer["tokens"] == 256 and layer["format"] == "int4"
    assert layer["gptq_seconds"] > 0 and layer["rtn_seconds"] > 0
    # on correlated inputs GPTQ must beat round-to-nearest, or the timing measured the wrong thing
    assert layer["rel_output_error_gptq"] < layer["rel_output_error_rtn"]
    assert report["cpu_count"] >= 1 and "loadavg_1min_before" in report


def test_bench_gptq_text_and_errors(capsys):
    assert main(["bench-gptq", "--out", "32", "--in", "64", "--tokens", "128", "--group", "32", "--bits", "3"]) == 0
    out = capsys.readouterr().out
    assert "in=64 → out=32" in out and "int3 PerGroup(32)" in out and "load average" in out
    with pytest.raises(SystemExit, match="both --out and --in"):
        main(["bench-gptq", "--out", "32"])
