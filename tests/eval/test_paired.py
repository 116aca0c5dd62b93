"""Paired comparison with bootstrap intervals, against direct computations on a tiny model."""

import math

import torch

from labkit.eval.kld import kld, kld_reference
from labkit.eval.paired import Interval, bootstrap_mean, compare, paired_reference
from labkit.eval.perplexity import perplexity_of_windows
from labkit.models.tiny import tiny_model


def test_matches_labkit_perplexity_and_kld():
    base, other = tiny_model("qwen3", seed=0), tiny_model("qwen3", seed=1)
    windows = torch.randint(0, 320, (3, 40), generator=torch.Generator().manual_seed(0))
    ref = paired_reference(base, windows)
    c = compare(other, ref, block=8, n_boot=300)
    direct = kld(other, kld_reference(base, windows))
    assert math.isclose(c.ppl.value, perplexity_of_windows(other, windows).ppl, rel_tol=1e-9)
    assert math.isclose(c.kld.value, direct.kld, rel_tol=1e-6) and math.isclose(c.top1, direct.top1)
    base_ppl = perplexity_of_windows(base, windows).ppl
    assert math.isclose(c.ppl_change.value, c.ppl.value / base_ppl - 1, rel_tol=1e-9)
    for iv in (c.ppl, c.ppl_change, c.kld):
        assert iv.low <= iv.value <= iv.high and iv.low < iv.high
    same = compare(base, ref, block=8, n_boot=100)
    assert same.kld.value < 1e-9 and same.ppl_change.contains(0.0) and same.top1 == 1.0


def test_block_bootstrap_width_shrinks_with_more_data():
    gen = torch.Generator().manual_seed(3)
    small, large = torch.randn(2, 64, generator=gen), torch.randn(32, 64, generator=gen)
    w_small = bootstrap_mean(small, block=16).high - bootstrap_mean(small, block=16).low
    w_large = bootstrap_mean(large, block=16).high - bootstrap_mean(large, block=16).low
    assert w_large < w_small / 2              # ~1/sqrt(16) = 1/4 of the width
    hits = sum(bootstrap_mean(torch.randn(8, 64, generator=gen), block=16, n_boot=400).contains(0.0)
               for _ in range(40))
    assert hits >= 33                         # a 95 % interval: ~38 of 40 contain the true mean 0
    assert Interval(0.0041, -0.001, 0.0095).fmt("+.2f", 100) == "+0.41 [-0.10, +0.95]"
