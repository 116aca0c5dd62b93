"""Consistency guards on the embedded default model (SmolLM2-135M-Instruct), marked slow.

* every weight-only scheme: fake and real perplexity within 0.5% of each other;
* labkit int8-row (real) against torchao's ``Int8WeightOnlyConfig()`` (per-row int8, the same
  decoder linears): perplexities within 0.5%;
* per-tensor INT8 is measurably worse than per-row INT8 (perplexity and KL divergence);
* the converted model itself: sensible perplexity on the lab text and the Q4_1 structure the
  docstring of ``labkit.models.smollm2`` describes.

Lean on purpose (2 CPU cores shared by the whole suite): the fake-vs-real check uses 2 windows of
256 tokens, the comparisons against the baseline and torchao 8 windows (2,040 scored tokens).
"""

import copy
import math

import pytest
import torch

from labkit.data import load_ppl_text
from labkit.eval.kld import kld, kld_reference
from labkit.data import tokenize_corpus
from labkit.eval.perplexity import make_windows, perplexity_of_windows
from labkit.nn import quantize_model

pytestmark = pytest.mark.slow

WEIGHT_ONLY = ["int8-tensor", "int8-row", "int8-group64", "int8-group128", "int8-group256", "int8-group512",
               "fp8-tensor", "fp8-row", "fp8-group64", "fp8-group128", "fp8-group256", "fp8-group512"]


@pytest.fixture(scope="module")
def default():
    from labkit.models import load_model

    torch.manual_seed(0)
    lm = load_model("default")
    ids = tokenize_corpus(load_ppl_text("lab"), lm.tokenizer, max_tokens=2048)
    windows = make_windows(ids, 256)
    return lm.model, windows


@pytest.fixture(scope="module")
def baseline_ppl(default):
    model, windows = default
    return perplexity_of_windows(model, windows).ppl


def test_converted_model_is_sensible(default, baseline_ppl):
    model, _ = default
    # A working 135M model on plain English: far below the vocabulary size (49152) and above 1.
    assert 5 < baseline_ppl < 30, f"default model perplexity {baseline_ppl:.2f} on the lab text: conversion broken?"
    # Q4_1 structure: each block of 32 weights of a decoder linear row holds at most 16 distinct values.
    w = model.model.layers[3].mlp.down_proj.weight.detach()
    blocks = w.reshape(w.shape[0], -1, 32)[:64]
    distinct = max(len(torch.unique(b)) for b in blocks.reshape(-1, 32))
    assert distinct <= 16, f"a 32-weight block has {distinct} distinct values; expected ≤ 16 for Q4_1"


@pytest.mark.parametrize("scheme", WEIGHT_ONLY)
def test_fake_and_real_agree(default, scheme):
    model, windows = default
    short = windows[:2]
    ppl = {mode: perplexity_of_windows(quantize_model(model, scheme, mode).model, short).ppl
           for mode in ("fake", "real")}
    rel = abs(ppl["real"] / ppl["fake"] - 1)
    assert rel < 0.005, (f"{scheme}: fake ppl {ppl['fake']:.4f} vs real {ppl['real']:.4f} ({rel:.2%} apart); "
                         "the two modes must compute the same quantized weights")


def test_int8_row_matches_torchao(default, baseline_ppl):
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    model, windows = default
    ours = perplexity_of_windows(quantize_model(model, "int8-row", "real").model, windows).ppl
    theirs_model = copy.deepcopy(model)
    # The same layers as labkit: every decoder linear, not the (tied) lm_head.
    quantize_(theirs_model, Int8WeightOnlyConfig(),
              filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and fqn != "lm_head")
    theirs = perplexity_of_windows(theirs_model, windows).ppl
    assert theirs != baseline_ppl and ours != baseline_ppl
    assert abs(ours / theirs - 1) < 0.005, f"labkit int8-row {ours:.4f} vs torchao Int8WeightOnlyConfig {theirs:.4f}"


def test_per_tensor_worse_than_per_row(default, baseline_ppl):
    model, windows = default
    ref = kld_reference(model, windows[:4])
    r = {s: kld(quantize_model(model, s, "fake").model, ref) for s in ("int8-tensor", "int8-row")}
    assert r["int8-tensor"].kld > 2 * r["int8-row"].kld, (
        f"KL int8-tensor {r['int8-tensor'].kld:.3e} vs int8-row {r['int8-row'].kld:.3e}")
    ppl_tensor = perplexity_of_windows(quantize_model(model, "int8-tensor", "fake").model, windows).ppl
    ppl_row = perplexity_of_windows(quantize_model(model, "int8-row", "fake").model, windows).ppl
    assert ppl_tensor > ppl_row, f"ppl int8-tensor {ppl_tensor:.4f} should exceed int8-row {ppl_row:.4f}"
    assert math.isfinite(ppl_tensor)
