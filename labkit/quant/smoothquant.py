"""SmoothQuant: move activation outliers into the weights, where quantization handles them offline.

How it works: a linear layer computes ``Y = X W`` (math layout: ``X: (tokens, dim)``,
``W: (dim, out)``). A few input channels j of X carry outliers ~100× the others, which ruins a
per-tensor or per-token activation scale. For any positive ``s: (dim,)``,

    Y = (X / s) (s[:, None] · W),

so dividing channel j of X by s_j and multiplying row j of W by s_j changes nothing in exact
arithmetic, but it flattens X's channel ranges and makes W's a bit rougher. SmoothQuant picks

    s_j = max|X[:, j]|^α / max|W[j, :]|^(1−α),

α = 0.5 splitting the difficulty evenly. Worked number: an outlier channel with max|X_j| = 64 and
max|W_j| = 0.25 gets s_j = 8 / 0.5 = 16: the activations shrink to max 4 and the weights grow to
max 4 — both channels now have the same range, so the same int8 grid suits both.

Zero guard: a channel whose activation or weight maximum is 0 is unused on one side; it gets
s_j = 1 (no smoothing) instead of 0 or ∞ (the SmoothQuant repository clamps to 1e-5 instead).

Two faces of the same math:

* exercise references in plain numpy (``compute_smooth_factor``, ``apply_smoothing``) in the math
  layout ``W: (dim, out)`` that the companion exercise uses;
* model helpers in torch (``smooth_factors``, ``weight_channel_absmax``, ``fold_into_norm``,
  ``fold_into_linear``). ``nn.Linear`` stores its weight as ``(out, in)`` — the transpose of the
  math layout — so scaling W's *row* j in the math is scaling the Linear weight's *column* j:
  ``weight * s[None, :]``. In a transformer, ``X / s`` is never computed at run time: the
  division is folded into the RMSNorm/LayerNorm that produces X (``norm_weight / s``), and every
  linear reading that norm's output gets ``weight * s[None, :]``; all those linears must share
  one ``s``, hence ``weight_channel_absmax`` takes the maximum over all of them.

Unlike torchao's ``SmoothQuantConfig`` (which wraps a linear and keeps the scale as a runtime
pre-multiplication), folding leaves plain modules with new weights, so any weight format — int8
or fp8 — can be applied afterwards. All functions return new tensors; inputs are never changed.
"""

from __future__ import annotations

import numpy as np
import torch

from .arrays import as_numpy
from .backend import check_float_input


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1] (migration strength), got {alpha!r}")
    return float(alpha)


# ----------------------------------------------------------------------------- exercise (numpy)


def compute_smooth_factor(X, W, alpha: float = 0.5):
    """``s: (dim,)`` with ``s_j = max|X[:, j]|^α / max|W[j, :]|^(1−α)`` for ``X: (tokens, dim)``,
    ``W: (dim, out)``; 1.0 where either maximum is 0. In X's float dtype."""
    alpha = _check_alpha(alpha)
    x, back = as_numpy(X, "X", ndim=2)
    w, _ = as_numpy(W, "W", ndim=2)
    if x.shape[1] != w.shape[0]:
        raise ValueError(
            f"X: (tokens, dim) and W: (dim, out) must share dim, got X {x.shape} and W {w.shape}"
            " (an nn.Linear weight is (out, in): pass its transpose)"
        )
    act = np.max(np.abs(x), axis=0)
    wmax = np.max(np.abs(w), axis=1).astype(x.dtype)
    ok = (act > 0) & (wmax > 0)
    s = np.ones_like(act)
    s[ok] = act[ok] ** alpha / wmax[ok] ** (1 - alpha)
    return back.array(s)


def apply_smoothing(X, W, s):
    """``(X / s, s[:, None] * W)`` for ``X: (tokens, dim)``, ``W: (dim, out)``, ``s: (dim,)``."""
    x, back = as_numpy(X, "X", ndim=2)
    w, _ = as_numpy(W, "W", ndim=2)
    sv, _ = as_numpy(s, "s", ndim=1)
    if not (x.shape[1] == w.shape[0] == sv.shape[0]):
        raise ValueError(f"shapes do not fit: X {x.shape} (tokens, dim), W {w.shape} (dim, out), s {sv.shape} (dim,)")
    if not np.all(sv > 0):
        raise ValueError(f"s must be positive (X is divided by it); {int(np.sum(sv <= 0))} entries are ≤ 0")
    return back.array(x / sv), back.array(sv[:, None] * w)


# ----------------------------------------------------------------------------- models (torch)


def _check_vector(v: torch.Tensor, name: str, dim: int | None = None) -> torch.Tensor:
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(v).__name__}")
    check_float_input(v, name)
    if v.ndim != 1 or (dim is not None and v.shape[0] != dim):
        want = f"({dim},)" if dim is not None else "1-D"
        raise ValueError(f"{name} must have shape {want}, got {tuple(v.shape)}")
    return v


def _check_s(s: torch.Tensor, dim: int) -> torch.Tensor:
    _check_vector(s, "s", dim)
    if not bool((s > 0).all()):
        raise ValueError(f"smoothing factors s must be positive; {int((s <= 0).sum())} entries are ≤ 0")
    return s


def channel_absmax(x: torch.Tensor) -> torch.Tensor:
    """Per-channel max|x| of activations ``x: (..., dim)`` → ``(dim,)`` float32 (calibration)."""
    check_float_input(x, "x", min_ndim=1)
    return x.detach().abs().reshape(-1, x.shape[-1]).amax(dim=0).float()


def weight_channel_absmax(*weights: torch.Tensor) -> torch.Tensor:
    """Per-input-channel max|W| over one or more ``nn.Linear`` weights ``(out_i, in)`` → ``(in,)``.

    Pass all linears fed by the same norm (q, k, v projections; gate and up projections).
    """
    if not weights:
        raise ValueError("weight_channel_absmax needs at least one (out, in) weight")
    cols = []
    for i, w in enumerate(weights):
        check_float_input(w, f"weights[{i}]")
        if w.ndim != 2 or w.shape[1] != weights[0].shape[1]:
            raise ValueError(f"weights must all be (out, in) with the same in; weights[{i}] is {tuple(w.shape)}")
        cols.append(w.detach().abs().amax(dim=0).float())
    return torch.stack(cols).amax(dim=0)


def smooth_factors(act_absmax: torch.Tensor, weight_absmax: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """``s = act_absmax^α / weight_absmax^(1−α)``, both ``(dim,)``; 1.0 where either is 0. float32."""
    alpha = _check_alpha(alpha)
    act = _check_vector(act_absmax, "act_absmax").float()
    w = _check_vector(weight_absmax, "weight_absmax", act.shape[0]).float()
    if bool((act < 0).any()) or bool((w < 0).any()):
        raise ValueError("act_absmax and weight_absmax are maxima of |x|: they cannot be negative")
    ok = (act > 0) & (w > 0)
    s = act.clamp_min(1e-30).pow(alpha) / w.clamp_min(1e-30).pow(1 - alpha)
    return torch.where(ok, s, torch.ones_like(s))


def fold_into_norm(norm_weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``norm_weight / s``: the norm now outputs ``X / s``. Same dtype as ``norm_weight``.

    Works for a LayerNorm bias too (``fold_into_norm(norm.bias, s)``), since ``(x̂·γ + β) / s =
    x̂·(γ/s) + β/s``. Assumes the norm multiplies by its weight directly (Llama, Qwen2/3); a norm
    that multiplies by ``1 + weight`` (Gemma) needs ``(1 + w) / s − 1`` instead.
    """
    _check_vector(norm_weight, "norm_weight")
    _check_s(s, norm_weight.shape[0])
    return (norm_weight.detach().float() / s.float()).to(norm_weight.dtype)


def fold_into_linear(weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``weight * s[None, :]`` for an ``nn.Linear`` weight ``(out, in)`` and ``s: (in,)``.

    This is ``s[:, None] * W`` of the math layout ``W: (dim, out)``, transposed. Computed in
    float32 (one rounding to a bfloat16 weight, not two), returned in ``weight``'s dtype.
    """
    check_float_input(weight, "weight")
    if weight.ndim != 2:
        raise ValueError(f"weight must be an nn.Linear weight (out, in), got shape {tuple(weight.shape)}")
    _check_s(s, weight.shape[1])
    return (weight.detach().float() * s.float()[None, :]).to(weight.dtype)
