"""SmoothQuant: exercise references (numpy, math layout) and the model helpers (torch, nn.Linear layout)."""

import numpy as np
import pytest
import torch

from labkit.quant import (
    apply_smoothing, channel_absmax, compute_smooth_factor, fold_into_linear, fold_into_norm,
    smooth_factors, weight_channel_absmax,
)


def test_smooth_factor_hand_computed():
    X = np.array([[64.0, 1.0, 0.0], [-2.0, -4.0, 0.0]])
    W = np.array([[0.25, -0.1], [1.0, 0.5], [3.0, 1.0]])
    s = compute_smooth_factor(X, W, alpha=0.5)
    # 64^.5 / .25^.5 = 16; 4^.5 / 1^.5 = 2; channel 2 has no activation → guarded to 1
    np.testing.assert_allclose(s, [16.0, 2.0, 1.0])
    np.testing.assert_allclose(compute_smooth_factor(X, W, alpha=1.0), [64.0, 4.0, 1.0])
    Xs, Ws = apply_smoothing(X, W, s)
    np.testing.assert_allclose(Xs[:, 0], [4.0, -0.125])
    np.testing.assert_allclose(Ws[0], [4.0, -1.6])
    np.testing.assert_allclose(Xs @ Ws, X @ W, atol=1e-12)


def test_numpy_exercise_matches_torch_model_helper():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(32, 8)).astype(np.float32)
    X[:, 3] *= 50
    W = rng.normal(size=(8, 5)).astype(np.float32)
    s_np = compute_smooth_factor(X, W, 0.7)
    lin = torch.from_numpy(W.T.copy())  # nn.Linear layout (out, in)
    s_t = smooth_factors(channel_absmax(torch.from_numpy(X)), weight_channel_absmax(lin), 0.7)
    np.testing.assert_allclose(s_np, s_t.numpy(), rtol=1e-6)
    np.testing.assert_allclose(fold_into_linear(lin, s_t).numpy().T, apply_smoothing(X, W, s_np)[1], rtol=1e-6)


def test_exercise_errors_and_no_mutation():
    X, W = np.ones((4, 3)), np.ones((3, 2))
    with pytest.raises(ValueError, match="must share dim"):
        compute_smooth_factor(X, np.ones((2, 3)))
    with pytest.raises(ValueError, match="alpha must be a number in"):
        compute_smooth_factor(X, W, alpha=1.5)
    with pytest.raises(ValueError, match="s must be positive"):
        apply_smoothing(X, W, np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        compute_smooth_factor(np.array([[np.nan, 1.0, 1.0]]), W)
    s = compute_smooth_factor(X, W)
    apply_smoothing(X, W, s)
    assert (X == 1).all() and (W == 1).all()


class RMSNorm(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.rand(dim) + 0.5)

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


def test_folded_block_same_output_and_flatter_activations():
    torch.manual_seed(0)
    dim = 32
    norm = RMSNorm(dim)
    with torch.no_grad():
        norm.weight[[3, 17]] = 40.0  # outlier channels, as in real LLM norms
    linears = [torch.nn.Linear(dim, n) for n in (48, 16, 16)]
    x = torch.randn(4, 10, dim)
    with torch.no_grad():
        h = norm(x)
        before = [lin(h) for lin in linears]
        s = smooth_factors(channel_absmax(h), weight_channel_absmax(*[l.weight for l in linears]), 0.5)
        w_norm, w_lin = norm.weight.clone(), [l.weight.clone() for l in linears]
        norm.weight.copy_(fold_into_norm(norm.weight, s))
        for lin in linears:
            lin.weight.copy_(fold_into_linear(lin.weight, s))
        h2 = norm(x)
        after = [lin(h2) for lin in linears]
    torch.testing.assert_close(norm.weight, w_norm / s)
    for lin, w0 in zip(linears, w_lin):
        torch.testing.assert_close(lin.weight, w0 * s[None, :])
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

    def spread(h):  # largest channel range over smallest: what a per-tensor scale suffers from
        r = channel_absmax(h)
        return (r.max() / r.min()).item()

    assert spread(h2) < spread(h) / 5, f"channel range ratio should shrink: {spread(h):.1f} → {spread(h2):.1f}"


def test_fold_dtype_and_inputs_unchanged():
    w = torch.randn(6, 4, dtype=torch.bfloat16)
    g = torch.ones(4, dtype=torch.bfloat16)
    s = torch.tensor([1.0, 2.0, 4.0, 0.5])
    w0, g0 = w.clone(), g.clone()
    assert fold_into_linear(w, s).dtype == torch.bfloat16
    assert fold_into_norm(g, s).tolist() == [1.0, 0.5, 0.25, 2.0]
    assert torch.equal(w, w0) and torch.equal(g, g0)


def test_model_helper_errors():
    s = torch.ones(4)
    with pytest.raises(ValueError, match=r"s must have shape \(3,\)"):
        fold_into_norm(torch.ones(3), s)
    with pytest.raises(ValueError, match="nn.Linear weight"):
        fold_into_linear(torch.ones(4), s)
    with pytest.raises(ValueError, match="must be positive"):
        fold_into_linear(torch.ones(2, 4), torch.tensor([1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="weight_absmax must have shape"):
        smooth_factors(torch.ones(4), torch.ones(5))
    with pytest.raises(ValueError, match="same in"):
        weight_channel_absmax(torch.ones(2, 4), torch.ones(2, 5))
    np.testing.assert_array_equal(smooth_factors(torch.tensor([0.0, 4.0]), torch.tensor([1.0, 0.0])).numpy(), [1, 1])
