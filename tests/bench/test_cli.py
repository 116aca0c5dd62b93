"""`labkit bench`: the JSON contract on the tiny model, and --check-targets logic on fixed timings."""

import json

import pytest

from labkit.bench import cli as bench_cli
from labkit.bench.targets import target_for
from labkit.bench.timing import summarize
from labkit.cli import main

SMALL = ["--model", "tiny-qwen3", "--repeats", "2", "--warmup", "0", "--gen-len", "3", "--prompt-len", "8",
         "--threads", "1", "--no-fused", "--json"]  # fused kernels compile: tested in tests/nn/test_fused.py
REQUIRED = {"tokens_per_s", "baseline_tokens_per_s", "speedup", "phase", "scheme", "device", "weight_bytes",
            "baseline_weight_bytes", "matmul_weight_bytes", "torch_threads", "repeats", "seconds", "baseline_seconds"}


def test_single_measurement_prints_one_flat_json_object(capsys):
    assert main(["bench", "--scheme", "int8-row", "--phase", "decode", *SMALL]) == 0
    out = json.loads(capsys.readouterr().out)
    assert REQUIRED <= set(out), f"missing keys: {REQUIRED - set(out)}"
    assert (out["phase"], out["scheme"], out["device"], out["repeats"]) == ("decode", "int8-row", "cpu", 2)
    # the numbers are the arithmetic of the seconds it reports
    again = summarize("decode", 1, 8, 3, out["seconds"], out["baseline_seconds"])
    assert out["tokens_per_s"] == pytest.approx(again.tokens_per_s)
    assert out["speedup"] == pytest.approx(again.speedup)
    # int8 codes + fp32 scales of all linears, lm_head included: about a quarter of fp32
    assert out["matmul_weight_bytes"] < 0.3 * out["baseline_matmul_weight_bytes"]
    assert out["target"] == 3.0 and isinstance(out["target_met"], bool)
    assert out["runner"] == "native"  # CPU, batch 1
    assert out["kernels"] == "eager"


def test_several_measurements_print_a_results_list(capsys):
    assert main(["bench", "--scheme", "int8-group64,fp8-row", "--phase", "both", *SMALL]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["scheme"], r["phase"]) for r in out["results"]] == [
        ("int8-group64", "prefill"), ("int8-group64", "decode"), ("fp8-row", "prefill"), ("fp8-row", "decode")]
    assert isinstance(out["all_targets_met"], bool)


def test_unknown_scheme_lists_the_known_ones(capsys):
    assert main(["bench", "--scheme", "int3-row", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "int3-row" in err and "int8-row" in err


@pytest.mark.parametrize("speedup, code", [(0.5, 1), (2.5, 1), (3.5, 0)])
def test_check_targets_exit_code(monkeypatch, capsys, speedup, code):
    fixed = summarize("decode", 1, 8, 3, [1.0 / speedup] * 2, [1.0] * 2)
    monkeypatch.setattr("labkit.bench.throughput.time_pair", lambda *a, **k: fixed)
    assert main(["bench", "--scheme", "int8-row", "--check-targets", *SMALL]) == code
    out = json.loads(capsys.readouterr().out)
    row = out["results"][0]
    assert row["speedup"] == pytest.approx(speedup) and row["target_met"] is (code == 0)
    assert out["all_targets_met"] is (code == 0) and len(out["missed"]) == (code == 1)


def test_targets_table():
    assert target_for("int8-row", "int8", "decode").min_speedup == 3.0
    assert target_for("int8-group128", "int8", "decode").min_speedup == 2.5
    assert target_for("fp8-tensor", "fp8_e4m3", "decode").min_speedup == 2.0
    assert target_for("int8-group64", "int8", "prefill").min_speedup == 1.0
    assert target_for("fp8-group64", "fp8_e4m3", "prefill").min_speedup == 0.9
    assert target_for("int8-row", "int8", "decode", mode="fake") is None
    assert target_for("none", "", "decode") is None


def test_nanovllm_engine_needs_cuda(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present: the CPU error path does not apply")
    assert main(["bench", "nanovllm", "--model", "tiny-qwen3", "--json"]) == 2
    assert "CUDA" in capsys.readouterr().err
    assert main(["bench", "--engine", "nanovllm", "--model", "tiny-qwen3", "--json"]) == 2  # the old spelling


def test_roofline_rows_and_their_arithmetic(capsys):
    assert main(["bench", "--scheme", "int8-row", "--roofline", "--scaling-threads", "2", *SMALL]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [r["torch_threads"] for r in rows] == [1, 2]
    for r in rows:
        for side in ("", "baseline_"):
            assert r[f"{side}roofline_tokens_per_s"] == pytest.approx(r["bandwidth_gb_s"] * 1e9 / r[f"{side}bytes_per_token"])
            tps = r["tokens_per_s"] if not side else r["baseline_tokens_per_s"]
            assert r[f"{side}roofline_fraction"] == pytest.approx(tps / r[f"{side}roofline_tokens_per_s"])
        assert r["bytes_per_token"] < 0.35 * r["baseline_bytes_per_token"]  # int8 codes vs float32


def _row(scheme, threads, tps, base, frac=0.6, base_frac=0.6):
    return {"scheme": scheme, "phase": "decode", "mode": "real", "torch_threads": threads, "tokens_per_s": tps,
            "baseline_tokens_per_s": base, "roofline_fraction": frac, "baseline_roofline_fraction": base_frac}


def test_roofline_and_thread_scaling_targets():
    assert bench_cli.extra_target_misses([_row("int8-row", 1, 60, 20), _row("int8-row", 2, 70, 25)]) == []
    misses = bench_cli.extra_target_misses([_row("int8-row", 1, 60, 20, frac=0.4), _row("int8-row", 2, 50, 25)])
    assert any("int8-row decode at 40%" in m for m in misses)
    assert any("int8-row decode slower with 2 threads" in m for m in misses)
    assert not any(m.startswith("none") for m in misses)
    # only fp32 and int8-row have a roofline target
    assert bench_cli.extra_target_misses([_row("fp8-row", 1, 40, 20, frac=0.3)]) == []


def test_modes_are_subcommands_and_old_names_still_work(capsys):
    assert main(["bench", "roofline", "--json"]) == 0
    assert any(k.startswith("smollm2-135m/RTX 4090/decode") for k in json.loads(capsys.readouterr().out))
    assert main(["bench", "matmul-error", "--shape", "8", "16", "8", "--trials", "1", "--json"]) == 0
    new = json.loads(capsys.readouterr().out)
    assert main(["matmul-error", "--shape", "8", "16", "8", "--trials", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == new
