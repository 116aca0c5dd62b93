"""KL divergence and top-1 agreement against hand-computed values and torch's kl_div."""

import math

import pytest
import torch

from labkit.eval.kld import kl_divergence, kld, kld_reference
from labkit.eval.perplexity import perplexity_of_windows
from labkit.models.tiny import tiny_model


def test_hand_computed_pair():
    p = torch.tensor([0.5, 0.5]).log()
    q = torch.tensor([0.25, 0.75]).log()
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)  # 0.1438 nats
    assert kl_divergence(p, q).item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.1438, abs=1e-4)


def test_zero_probability_terms_and_shapes():
    p = torch.tensor([[0.0, 1.0], [0.3, 0.7]]).log()  # log 0 = -inf must contribute 0, not NaN
    q = torch.tensor([[0.5, 0.5], [0.3, 0.7]]).log()
    kl = kl_divergence(p, q)
    assert kl.shape == (2,)
    assert kl[0].item() == pytest.approx(math.log(2), rel=1e-6) and kl[1].item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="shapes differ"):
        kl_divergence(p, q[:, :1])


def test_identical_models_give_zero():
    model = tiny_model("qwen3", seed=0)
    windows = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(0))
    r = kld(model, kld_reference(model, windows))
    assert r.kld == 0.0 and r.top1 == 1.0 and r.kld_max == 0.0
    assert r.tokens == 2 * 15
    assert r.ppl == pytest.approx(perplexity_of_windows(model, windows).ppl, rel=1e-9)


def test_different_models_match_torch_kl_div():
    base, other = tiny_model("qwen2", seed=0), tiny_model("qwen2", seed=0)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # a small perturbation, like quantization noise: most top-1 picks survive
        for w in other.parameters():
            w.add_(0.03 * torch.randn(w.shape, generator=g))
    windows = torch.randint(0, 300, (3, 12), generator=torch.Generator().manual_seed(1))
    r = kld(other, kld_reference(base, windows, batch_size=2), batch_size=3)
    with torch.no_grad():
        p = torch.log_softmax(base(windows).logits[:, :-1].double(), -1)
        q = torch.log_softmax(other(windows).logits[:, :-1].double(), -1)
    ref = torch.nn.functional.kl_div(q, p, log_target=True, reduction="none").sum(-1)
    assert r.kld == pytest.approx(ref.mean().item(), rel=1e-4)
    assert r.kld_max == pytest.approx(ref.max().item(), rel=1e-4)
    assert r.top1 == pytest.approx((p.argmax(-1) == q.argmax(-1)).double().mean().item())
    assert 0 < r.top1 < 1
