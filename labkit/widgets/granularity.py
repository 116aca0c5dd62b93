"""The group-size slider of notebook 03: one weight, INT8 and FP8, from per-tensor to 32-wide groups.

Moving the slider re-quantizes the same weight ``W: (out, in)`` with ``fake_quantize`` at the
chosen granularity (per-tensor, per-row, or per-group along ``in`` = the matmul's K) in int8
and in fp8 e4m3, redraws the histogram of ``W − Ŵ`` for both, and prints both MSEs. What it
shows: int8's error falls steadily as groups shrink (its step is ``absmax/127`` of the group),
while fp8's barely moves once an outlier no longer drags the scale into the subnormals — its
relative precision is the same at every magnitude. Groups cost one scale per g weights
(g = 128: 1/128 extra numbers), per-row one per row, per-tensor one in all.
"""

from __future__ import annotations

import numpy as np

from labkit.quant import PerGroup, PerRow, PerTensor, fake_quantize

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


def granularity_errors(W: np.ndarray, setting) -> dict[str, np.ndarray]:
    """``{fmt: W − Ŵ}`` for int8 and fp8_e4m3 at ``setting`` (``W: (out, in)``, float)."""
    g = granularity_of(setting)
    W = np.asarray(W, dtype=np.float32)
    return {fmt: W - fake_quantize(W, fmt, g) for fmt in FORMATS}


def _render(W, setting):
    from labkit.viz import error_figure

    errs = granularity_errors(W, setting)
    label = setting if isinstance(setting, str) else f"groups of {setting}"
    fig = error_figure(f"W − Ŵ, {label}", quant_errors={f: e for f, e in errs.items()})
    text = f"{label:>16}: " + "   ".join(f"{f} MSE {np.mean(e.astype(np.float64) ** 2):.3e}" for f, e in errs.items())
    return fig, text


def group_size_explorer(W: np.ndarray, settings=GROUP_SETTINGS):
    """Slider over ``settings``; returns the widget (``None`` under autograde)."""
    if under_autograde():
        print("(group-size slider skipped under autograde)")
        return None
    import ipywidgets as widgets

    slider = widgets.SelectionSlider(options=list(settings), value=settings[0], description="granularity",
                                     continuous_update=False, layout=widgets.Layout(width="420px"))
    return slider_app(slider, lambda value: _render(W, value))
