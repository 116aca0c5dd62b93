"""The group-size slider of notebook 03: one weight, INT8 and FP8, from per-tensor to 32-wide groups.

Moving the slider re-quantizes the same weight ``W: (out, in)`` — with the student's per-group
INT8 and FP8 functions when they are passed, else with ``fake_quantize`` — at the chosen granularity (per-tensor, per-row, or per-group along ``in`` = the matmul's K) in int8
and in fp8 e4m3, redraws the histograms of ``W − Ŵ`` side by side (``error_panels``) and prints
both MSEs. What it
shows: int8's error falls steadily as groups shrink (its step is ``absmax/127`` of the group),
while fp8's barely moves once an outlier no longer drags the scale into the subnormals — its
relative precision is the same at every magnitude. Groups cost one scale per g weights
(g = 128: 1/128 extra numbers), per-row one per row, per-tensor one in all.
"""

from __future__ import annotations

import numpy as np

from labkit.quant import PerGroup, PerRow, PerTensor, fake_quantize
from labkit.viz.style import color_for

from ._base import slider_app, under_autograde

GROUP_SETTINGS: tuple = ("per-tensor", "per-row", 512, 256, 128, 64, 32)
FORMATS = ("int8", "fp8_e4m3")


def granularity_of(setting):
    """``"per-tensor"`` → PerTensor(), ``"per-row"`` → PerRow(), an int g → PerGroup(g)."""
    if setting == "per-tensor":
        return PerTensor()
    if setting == "per-row":
        return PerRow()
    if isinstance(setting, (int, np.integer)) and not isinstance(setting, bool) and setting > 0:
        return PerGroup(int(setting))
    raise ValueError(f"unknown granularity setting {setting!r}; use one of {GROUP_SETTINGS}")


def granularity_errors(W: np.ndarray, setting, int8=None, fp8=None) -> dict[str, np.ndarray]:
    """``{fmt: W − Ŵ}`` for int8 and fp8_e4m3 at ``setting`` (``W: (out, in)``, float).

    ``int8`` / ``fp8``: optional ``fn(W, group_size) → Ŵ`` (the student's per-group functions of
    notebook 03) used for the group settings and for "per-row" (a group as wide as the row);
    "per-tensor", and any format without a function, use labkit's ``fake_quantize``.
    """
    g = granularity_of(setting)
    W = np.asarray(W, dtype=np.float32)
    own = {"int8": int8, "fp8_e4m3": fp8}
    width = None if setting == "per-tensor" else (W.shape[1] if setting == "per-row" else int(setting))
    out = {}
    for fmt in FORMATS:
        fn = own[fmt]
        W_hat = fake_quantize(W, fmt, g) if fn is None or width is None else np.asarray(fn(W, width), np.float32)
        out[fmt] = W - W_hat
    return out


LABELS = {"int8": "INT8", "fp8_e4m3": "FP8 e4m3"}


def error_panels(errs: dict[str, np.ndarray], title: str, bins: int = 80):
    """Side-by-side histograms of ``W − Ŵ``, one panel per format, notebook width, one title.

    The x-range (shared by the panels) comes from the bulk of the errors (the 0.5–99.5 % quantiles, so one
    outlier row does not squeeze everything into a spike at 0); counts are on a log scale; how many
    errors fall outside the range is written under the axis. The MSE (over all errors) sits in the
    panel's label, not in a legend over the bars.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(errs), squeeze=False)[0]
    flat = {fmt: np.asarray(e, np.float64).ravel() for fmt, e in errs.items()}
    flat = {fmt: e[np.isfinite(e)] for fmt, e in flat.items()}
    # one x-range for all panels (formats are compared on the same axis), from the bulk of the errors
    half = max((float(np.max(np.abs(np.quantile(e, [0.005, 0.995])))) for e in flat.values() if e.size), default=0.0)
    half = half or max((float(np.max(np.abs(e))) for e in flat.values() if e.size), default=0.0) or 1e-12
    for ax, (fmt, e) in zip(axes, flat.items()):
        outside = int(np.sum(np.abs(e) > half))
        unit = 10.0 ** np.floor(np.log10(half))  # tick labels in this unit: no offset text to collide with
        ax.hist(np.clip(e, -half, half) / unit, bins=bins, range=(-half / unit, half / unit),
                color=color_for(fmt))
        ax.set_yscale("log")
        ax.set_xlim(-half / unit, half / unit)
        ax.set_title(f"{LABELS.get(fmt, fmt)}: MSE {np.mean(e ** 2):.2e}", fontsize=9)
        edge = f"; {outside} beyond ± {half:.2g} shown at the edges" if outside else ""
        ax.set_xlabel(f"W − Ŵ  (× {unit:.0e}{edge})", fontsize=8)
        ax.set_ylabel("count (log)", fontsize=8)
        ax.tick_params(labelsize=8)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.18, top=0.82, wspace=0.25)
    return fig


def _label(setting) -> str:
    return setting if isinstance(setting, str) else f"groups of {setting} along in"


def _render(W, setting, int8=None, fp8=None):
    errs = granularity_errors(W, setting, int8, fp8)
    who = "your functions" if (int8 or fp8) else "labkit's fake_quantize"
    fig = error_panels(errs, f"W − Ŵ at {_label(setting)} ({who})")
    text = f"{_label(setting)}: " + "   ".join(
        f"{LABELS[f]} MSE {np.mean(e.astype(np.float64) ** 2):.3e}" for f, e in errs.items())
    return fig, text


def group_size_explorer(W: np.ndarray, int8=None, fp8=None, settings=GROUP_SETTINGS):
    """Slider over ``settings``; ``int8`` / ``fp8``: the student's ``fn(W, group_size) → Ŵ``
    (see ``granularity_errors``). Returns the widget (``None`` under autograde)."""
    if under_autograde():
        print("(group-size slider skipped under autograde)")
        return None
    import ipywidgets as widgets

    slider = widgets.SelectionSlider(options=list(settings), value=settings[0], description="granularity",
                                     continuous_update=False, layout=widgets.Layout(width="600px"))
    return slider_app(slider, lambda value: _render(W, value, int8, fp8))
