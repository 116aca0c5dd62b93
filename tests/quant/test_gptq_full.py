"""Full GPTQ against round-to-nearest, a plain OBQ loop (no Cholesky, no lazy batches) and its own loss."""

import pytest
import torch

from labkit.quant import PerGroup, PerRow, PerTensor, choose_qparams, dequantize, fake_quantize, quantize
from labkit.quant.gptq_full import gptq_quantize, gptq_quantize_hessian, hessian


def correlated_layer(out=48, inn=192, tokens=384, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(inn // 8, inn, generator=g)  # inputs live near a 24-dim subspace: strongly correlated
    X = torch.randn(tokens, inn // 8, generator=g) @ mix + 0.05 * torch.randn(tokens, inn, generator=g)
    W = torch.randn(out, inn, generator=g) * 0.05
    return W.to(dtype), X.to(dtype)


def out_err(X, W, W_hat):
    return torch.linalg.norm(X.double() @ (W.double() - W_hat.double()).T).item()


def reference_obq(W, H, bits, group=None, percdamp=0.01):
    """Textbook GPTQ order without the tricks: explicit H⁻¹ and its Schur-complement downdate."""
    W = W.double().clone()
    H = H.double().clone()
    n = H.shape[0]
    qmax = 2 ** (bits - 1) - 1
    Hinv = torch.linalg.inv(H + percdamp * H.diag().mean() * torch.eye(n, dtype=H.dtype))
    s = W.abs().amax(1) / qmax
    Q = torch.zeros_like(W)
    for j in range(n):
        if group and j % group == 0:
            s = W[:, j : j + group].abs().amax(1) / qmax
        Q[:, j] = torch.clamp(torch.round(W[:, j] / s), -qmax, qmax) * s
        err = (W[:, j] - Q[:, j]) / Hinv[j, j]
        W[:, j + 1 :] -= torch.outer(err, Hinv[j, j + 1 :])
        Hinv = Hinv - torch.outer(Hinv[:, j], Hinv[j, :]) / Hinv[j, j]
    return Q


@pytest.mark.parametrize("granularity,block", [(PerRow(), 16), (PerGroup(8), 16), (PerGroup(24), 16), (PerGroup(40), 128)])
def test_matches_textbook_obq_loop(granularity, block):
    W, X = correlated_layer(out=12, inn=80, tokens=160, dtype=torch.float64)
    H = hessian(X)
    res = gptq_quantize_hessian(W, H, n_bits=3, granularity=granularity, block_size=block)
    group = granularity.group_size if isinstance(granularity, PerGroup) else None
    ref = reference_obq(W, H, 3, group)
    torch.testing.assert_close(res.weight, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("bits", [4, 3])
@pytest.mark.parametrize("granularity", [PerRow(), PerGroup(64)])
def test_beats_round_to_nearest_on_correlated_inputs(bits, granularity):
    W, X = correlated_layer()
    res = gptq_quantize(W, X, n_bits=bits, granularity=granularity)
    rtn = fake_quantize(W, res.fmt, granularity)
    e_gptq, e_rtn = out_err(X, W, res.weight), out_err(X, W, rtn)
    assert e_gptq < 0.5 * e_rtn, f"{bits}-bit {granularity}: GPTQ ‖XΔ‖ {e_gptq:.4g} should be well below RTN's {e_rtn:.4g}"


def test_codes_scales_and_loss_are_consistent():
    W, X = correlated_layer(out=16, inn=576, tokens=256)
    res = gptq_quantize(W, X, n_bits=4, granularity=PerGroup(128))
    assert res.codes.dtype == torch.int8 and res.scale.shape == (16, 5)  # 576 = 4·128 + 64
    assert int(res.codes.abs().max()) <= 7
    assert torch.equal(dequantize(res.codes, res.qparams), res.weight)
    H = hessian(X).double()
    Hd = H + 0.01 * H.diag().mean() * torch.eye(576, dtype=torch.float64)
    D = (W - res.weight).double()
    assert res.loss == pytest.approx(0.5 * float((D @ Hd * D).sum()), rel=1e-3)


def test_worked_example_of_the_docstring():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1000, 2, generator=g)
    X = torch.stack([z[:, 0], z[:, 0], z[:, 1]], 1)  # x1 == x2, x3 independent
    res = gptq_quantize(torch.tensor([[0.4, 0.4, 1.0]]), X, n_bits=2)
    assert res.weight.tolist() == [[0.0, 1.0, 1.0]]  # RTN would give [0, 0, 1]


def test_eight_bits_is_nearly_lossless_and_deterministic():
    W, X = correlated_layer()
    a = gptq_quantize(W, X, n_bits=8)
    b = gptq_quantize(W, X, n_bits=8)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.codes, b.codes) and a.loss == b.loss
    rel = out_err(X, W, a.weight) / torch.linalg.norm(X.double() @ W.double().T).item()
    assert rel < 2e-3, f"8-bit GPTQ relative output error {rel:.2e} should be tiny"


def test_dead_inputs_inputs_unchanged_and_dtype():
    W, X = correlated_layer(out=8, inn=64, tokens=128)
    X[:, 5] = 0.0  # a feature that is always zero
    W16, X0 = W.to(torch.bfloat16), X.clone()
    W0 = W16.clone()
    res = gptq_quantize(W16, X, n_bits=4)
    assert res.weight.dtype == torch.bfloat16 and torch.isfinite(res.weight.float()).all()
    assert (res.weight[:, 5] == 0).all()
    assert torch.equal(W16, W0) and torch.equal(X, X0)


def test_bad_inputs():
    W, X = correlated_layer(out=8, inn=32, tokens=64)
    with pytest.raises(ValueError, match=r"X: \(tokens, in\) must have in = weight's in"):
        gptq_quantize(W, X[:, :16])
    with pytest.raises(ValueError, match="X contains 64 NaN"):  # column 3 of 64 tokens
        gptq_quantize(W, torch.where(torch.arange(32) == 3, torch.nan, X))
    with pytest.raises(ValueError, match="weight contains"):
        gptq_quantize(torch.full((8, 32), torch.inf), X)
    with pytest.raises(ValueError, match="n_bits must be an integer from 2 to 8"):
        gptq_quantize(W, X, n_bits=9)
    with pytest.raises(TypeError, match="PerRow"):
        gptq_quantize(W, X, granularity=PerTensor())
    with pytest.raises(ValueError, match="H must be"):
        gptq_quantize_hessian(W, torch.eye(16))
