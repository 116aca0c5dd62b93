"""The alpha slider of notebook 05: how SmoothQuant's migration strength trades activation range
for weight range, and what that does to the W8A8 output error.

``w8a8_output_error`` simulates the deployment: activations ``X: (tokens, dim)`` fake-quantized
to int8 per token (dynamic, as notebook 05's Task 5.4; ``per_token=False``: one scale per tensor,
as a static int8 kernel would), the weight ``W: (dim, out)`` per output channel (one scale per
column of W, i.e. per row of the ``(out, dim)`` nn.Linear weight), and compares ``X̂ Ŵ`` with the
float ``X W``. With smoothing, the same is done to ``X / s`` and
``s[:, None] · W`` — whose float product is ``X W`` again.

α = 0 leaves the activations alone (outliers stay); α = 1 moves all of their range into the
weights, which then carry the outliers; in between, both ranges get similar and the error has a
minimum (around 0.5 on typical LLM activations, higher when the outliers are severe).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labkit.quant import PerRow, PerTensor, PerToken, apply_smoothing, compute_smooth_factor, fake_quantize

from ._base import slider_app, under_autograde


def w8a8_output_error(X: np.ndarray, W: np.ndarray, s: np.ndarray | None = None, per_token: bool = True) -> float:
    """MSE between ``X W`` and its W8A8 simulation (``X`` int8 per token — or per tensor with
    ``per_token=False`` — and ``W`` int8 per output channel), after smoothing by ``s: (dim,)`` if
    given. ``X: (tokens, dim)``, ``W: (dim, out)``."""
    X = np.asarray(X, dtype=np.float32)
    W = np.asarray(W, dtype=np.float32)
    Y = X.astype(np.float64) @ W.astype(np.float64)
    if s is not None:
        X, W = apply_smoothing(X, W, s)
    Xq = fake_quantize(X, "int8", PerToken() if per_token else PerTensor())
    Wq = fake_quantize(np.ascontiguousarray(W.T), "int8", PerRow()).T  # one scale per output column
    return float(np.mean((Y - Xq.astype(np.float64) @ Wq.astype(np.float64)) ** 2))


@dataclass(frozen=True)
class SmoothingSummary:
    """What the slider shows for one alpha: per-channel ranges before/after and the W8A8 errors."""

    alpha: float
    s: np.ndarray  # (dim,)
    act_range: np.ndarray  # max|X[:, j]| before smoothing, (dim,)
    act_range_smoothed: np.ndarray
    weight_range: np.ndarray  # max|W[j, :]| before, (dim,)
    weight_range_smoothed: np.ndarray
    error_plain: float
    error_smoothed: float


def smoothing_summary(X: np.ndarray, W: np.ndarray, alpha: float) -> SmoothingSummary:
    """Ranges and W8A8 errors for one ``alpha`` (``X: (tokens, dim)``, ``W: (dim, out)``)."""
    X = np.asarray(X, dtype=np.float32)
    W = np.asarray(W, dtype=np.float32)
    s = compute_smooth_factor(X, W, alpha)
    Xs, Ws = apply_smoothing(X, W, s)
    return SmoothingSummary(
        alpha=float(alpha), s=s,
        act_range=np.max(np.abs(X), axis=0), act_range_smoothed=np.max(np.abs(Xs), axis=0),
        weight_range=np.max(np.abs(W), axis=1), weight_range_smoothed=np.max(np.abs(Ws), axis=1),
        error_plain=w8a8_output_error(X, W), error_smoothed=w8a8_output_error(X, W, s),
    )


def _render(X, W, alpha):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    r = smoothing_summary(X, W, alpha)
    fig = Figure(figsize=(9, 2.8), dpi=80)
    FigureCanvasAgg(fig)
    a1, a2 = fig.subplots(1, 2)
    ch = np.arange(r.s.size)
    a1.bar(ch, r.act_range, color="tab:gray", alpha=0.4, label="before")
    a1.bar(ch, r.act_range_smoothed, color="tab:blue", alpha=0.8, label="after")
    a1.set_title("activation range max|X[:, j]|")
    a2.bar(ch, r.weight_range, color="tab:gray", alpha=0.4, label="before")
    a2.bar(ch, r.weight_range_smoothed, color="tab:orange", alpha=0.8, label="after")
    a2.set_title("weight range max|W[j, :]|")
    for ax in (a1, a2):
        ax.set_xlabel("channel j")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle(f"alpha = {alpha:.2f}", fontsize=10)
    fig.tight_layout()
    text = (f"alpha {alpha:.2f}: W8A8 output MSE {r.error_plain:.3e} without smoothing → "
            f"{r.error_smoothed:.3e} with (max|X| {r.act_range.max():.3g} → {r.act_range_smoothed.max():.3g}, "
            f"max|W| {r.weight_range.max():.3g} → {r.weight_range_smoothed.max():.3g})")
    return fig, text


def alpha_explorer(X: np.ndarray, W: np.ndarray):
    """Slider over alpha in [0, 1]; returns the widget (``None`` under autograde)."""
    if under_autograde():
        print("(alpha slider skipped under autograde)")
        return None
    import ipywidgets as widgets

    slider = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="alpha",
                                 continuous_update=False)
    return slider_app(slider, lambda value: _render(X, W, value))
