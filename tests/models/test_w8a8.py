"""Whole-model W8A8 / SmoothQuant: conversion, guards, torchao path (tiny models); the default model
(slow): smoothing helps INT8, labkit and torchao SmoothQuant agree, α sweep, INT8 vs FP8 table."""

import math
import time

import pytest
import torch

from labkit.models.calibration import calibrate, calibration_windows
from labkit.models.layer_maps import linear_names
from labkit.models.tiny import tiny_model
from labkit.models.w8a8 import _guard, count_act_quantized, torchao_fp8, torchao_smoothquant_int8
from labkit.models.w8a8_schemes import quantize_smoothed
from labkit.nn.w8a8 import W8A8Linear
from labkit.schemes import W8A8, SmoothQuant


def stream(seed, n=3000):
    return torch.randint(1, 320, (n,), generator=torch.Generator().manual_seed(seed))


CAL = calibration_windows(stream(0), 4, 32)


def labkit_w8a8(model, fmt, alpha=None, calibration=CAL):
    """labkit's one W8A8 pipeline (plain, or SmoothQuant at ``alpha`` with statistics from ``calibration``)."""
    if alpha is None:
        return quantize_smoothed(model, W8A8(fmt))
    return quantize_smoothed(model, SmoothQuant(fmt, alpha=alpha), calibrate(model, calibration, linear_names(model)))


@pytest.mark.parametrize("fmt", ["int8", "fp8_e4m3"])
@pytest.mark.parametrize("alpha", [None, 0.5])
def test_every_decoder_linear_is_replaced_and_input_untouched(fmt, alpha):
    model = tiny_model("qwen2")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = labkit_w8a8(model, fmt, alpha)
    assert list(res.report.layers) == linear_names(model) and res.report.n_layers == 14
    assert count_act_quantized(res.model) == 14
    assert isinstance(res.model.model.layers[1].mlp.down_proj, W8A8Linear)
    assert type(res.model.lm_head) is torch.nn.Linear, "lm_head must stay in float"
    assert _guard("labkit", model, res.model, CAL) > 0
    assert count_act_quantized(model) == 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"the W8A8 pipeline changed the input model's {k}"


def test_guards_catch_a_conversion_that_did_nothing():
    model = tiny_model("llama")
    with pytest.raises(RuntimeError, match="no linear quantizes its activations"):
        _guard("test", model, model, CAL)
    fake = labkit_w8a8(model, "int8").model  # has W8A8 linears; compared with itself the logits do not move
    with pytest.raises(RuntimeError, match="exactly the baseline's logits"):
        _guard("test", fake, fake, CAL)
    with pytest.raises(ValueError, match="calibration"):
        quantize_smoothed(model, SmoothQuant("int8", alpha=0.5))


def test_torchao_smoothquant_converts_every_decoder_linear_and_tracks_labkit():
    """torchao's prepare → calibrate → convert gives 14 activation-quantized linears, and its output error
    is of the same size as labkit's SmoothQuant INT8 (same method, different s sharing and int8 range)."""
    model = tiny_model("qwen3")
    x = calibration_windows(stream(1), 2, 32)
    ao = torchao_smoothquant_int8(model, CAL, alpha=0.5)
    assert ao.report.act_quantized == 14 and ao.report.backend == "torchao"
    assert type(ao.model.lm_head.weight) is torch.nn.Parameter and ao.model.lm_head.weight.dtype == torch.float32
    lk = labkit_w8a8(model, "int8", alpha=0.5)
    with torch.no_grad():
        base = model(x).logits
        e_ao = (ao.model(x).logits - base).pow(2).mean().item()
        e_lk = (lk.model(x).logits - base).pow(2).mean().item()
    assert e_ao > 0 and e_lk > 0
    assert 1 / 4 < e_ao / e_lk < 4, f"torchao SmoothQuant error {e_ao:.3g} vs labkit {e_lk:.3g}: should be comparable"


def test_torchao_fp8_explains_it_needs_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("has CUDA")
    with pytest.raises(RuntimeError, match="compute capability ≥ 8.9"):
        torchao_fp8(tiny_model("qwen3"), alpha=0.5, calibration=CAL)


@pytest.mark.gpu
def test_torchao_fp8_on_gpu_matches_labkit_fp8():
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("FP8 needs SM ≥ 8.9")
    model = tiny_model("qwen3").cuda()
    cal = CAL.cuda()
    ao = torchao_fp8(model, alpha=0.5, calibration=cal)
    lk = labkit_w8a8(model, "fp8_e4m3", alpha=0.5, calibration=cal)
    assert ao.report.act_quantized == 14
    x = calibration_windows(stream(1), 2, 32).cuda()
    with torch.no_grad():
        base = model(x).logits
        e_ao = (ao.model(x).logits - base).pow(2).mean().item()
        d = (ao.model(x).logits - lk.model(x).logits).pow(2).mean().item()
    assert e_ao > 0 and d < e_ao, "torchao FP8 and labkit FP8 (same scales and codes) should agree better than either with float"


# ----------------------------------------------------------------------------- default model (slow)


@pytest.fixture(scope="module")
def default_setup():
    from labkit.data import load_ppl_text, tokenize_corpus
    from labkit.eval.perplexity import make_windows
    from labkit.models import load_model

    model, tok = load_model("default")
    ids = tokenize_corpus(load_ppl_text("lab"), tok)
    windows = make_windows(ids[:512], 256)  # evaluation: the first 512 tokens (lean: ~3 min for this file)
    cal = calibration_windows(ids[2048:], 4, 256, seed=0)  # calibration: disjoint, later in the text
    stats = calibrate(model, cal, linear_names(model))
    return model, tok, windows, cal, stats


@pytest.fixture(scope="module")
def int8_sweep(default_setup):
    from labkit.eval.w8a8_comparison import alpha_sweep

    model, _, windows, _, stats = default_setup
    t = time.perf_counter()
    sweep = alpha_sweep(model, windows, stats, alphas=(0.0, 0.5, 1.0), fmt="int8")
    print(f"\nint8 α sweep {time.perf_counter() - t:.0f}s: base {sweep.baseline_ppl:.4f} "
          f"w8a8 {sweep.unsmoothed_ppl:.4f} sq {dict(zip(sweep.alphas, sweep.ppl))}")
    return sweep


@pytest.mark.slow
def test_smoothquant_int8_not_worse_than_w8a8_int8(int8_sweep):
    s = int8_sweep
    sq = s.ppl[s.alphas.index(0.5)]
    assert s.unsmoothed_ppl != s.baseline_ppl and sq != s.baseline_ppl
    assert sq <= s.unsmoothed_ppl, (
        f"SmoothQuant INT8 (α=0.5) ppl {sq:.4f} is worse than plain W8A8 INT8 {s.unsmoothed_ppl:.4f} "
        f"(baseline {s.baseline_ppl:.4f}): smoothing should move activation outliers into the weights"
    )


@pytest.mark.slow
def test_alpha_sweep_is_a_curve(int8_sweep, tmp_path):
    from labkit.viz.w8a8 import plot_alpha_sweep

    s = int8_sweep
    assert len(set(s.ppl)) == len(s.ppl), f"every α should give a different perplexity, got {s.ppl}"
    assert all(math.isfinite(p) and p > s.baseline_ppl * 0.95 for p in s.ppl)
    fig = plot_alpha_sweep(s)
    fig.savefig(tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 1000


@pytest.mark.slow
def test_labkit_and_torchao_smoothquant_int8_agree_within_1pct(default_setup, int8_sweep):
    from labkit.eval.perplexity import perplexity_of_windows

    model, _, windows, cal, _ = default_setup
    ao = torchao_smoothquant_int8(model, cal, alpha=0.5)
    assert ao.report.act_quantized == 210
    ppl_ao = perplexity_of_windows(ao.model, windows).ppl
    ppl_lk = int8_sweep.ppl[int8_sweep.alphas.index(0.5)]
    print(f"\ntorchao sq-int8 {ppl_ao:.4f} labkit sq-int8 {ppl_lk:.4f}")
    assert ppl_ao != int8_sweep.baseline_ppl
    assert abs(ppl_ao / ppl_lk - 1) < 0.01, f"torchao {ppl_ao:.4f} vs labkit {ppl_lk:.4f} SmoothQuant INT8 ppl"


def test_int8_vs_fp8_table_with_mmlu_on_a_tiny_model(tmp_path):
    """The full table (ppl, KL, top-1, MMLU) and its 3-panel plot; the MMLU column on a tiny model
    (MMLU prompts are the slow part on the default model)."""
    from labkit.data import MMLUData, load_mmlu
    from labkit.eval.w8a8_comparison import compare_formats
    from labkit.models.tiny import tiny_tokenizer
    from labkit.viz.w8a8 import plot_format_comparison

    model = tiny_model("qwen2")
    full = load_mmlu("lab")
    few = MMLUData(dev=full.dev, test={s: q[:1] for s, q in full.test.items()})
    cmp = compare_formats(model, tiny_tokenizer(), calibration_windows(stream(2), 2, 32), CAL, alpha=0.5, mmlu=few, k=1)
    assert [r.scheme for r in cmp.rows] == ["w8a8-int8", "smoothquant-int8", "w8a8-fp8", "smoothquant-fp8"]
    assert all(r.mmlu is not None and 0 <= r.mmlu <= 1 and r.kld > 0 for r in cmp.rows) and cmp.mmlu_n == len(few.test)
    assert "| smoothquant-fp8 | 0.5 |" in cmp.to_markdown()
    fig = plot_format_comparison(cmp)
    fig.savefig(tmp_path / "cmp.png")
    assert len(fig.axes) == 3


@pytest.mark.slow
def test_int8_vs_fp8_table_and_plot(default_setup, tmp_path):
    from labkit.eval.w8a8_comparison import compare_formats
    from labkit.viz.w8a8 import plot_format_comparison

    model, tok, windows, _, stats = default_setup
    cmp = compare_formats(model, tok, windows[:1], stats, alpha=0.5, mmlu=None)
    print("\n" + cmp.to_markdown())
    assert [r.scheme for r in cmp.rows] == ["w8a8-int8", "smoothquant-int8", "w8a8-fp8", "smoothquant-fp8"]
    for r in cmp.rows:
        assert r.kld > 0 and r.ppl != cmp.baseline_ppl and r.mmlu is None
    int8, sq_int8 = cmp.rows[0], cmp.rows[1]
    assert sq_int8.kld < int8.kld, "SmoothQuant should bring INT8 W8A8's distribution closer to the baseline"
    fig = plot_format_comparison(cmp)
    fig.savefig(tmp_path / "cmp.png")
    assert len(fig.axes) == 2
