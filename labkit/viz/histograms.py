"""Error histograms: where a quantizer's error lives, and where a student's answer departs from ours.

Two panels answer two questions:

* **left, yours − reference**: for a correct answer this is a spike at 0 (the checks plot it even
  then, so the feedback page shows what "right" looks like); a constant ratio error spreads it
  proportionally to x, a rounding bug gives spikes at ±one step, a clipping bug a few far bars;
* **right, quantization error x − x̂**: the error the method itself makes, for your x̂ and ours
  overlaid. For absmax int8 it is flat in [−scale/2, scale/2]; an outlier widens it; fp8 gives a
  peaked shape because its step grows with |x|.

Figures are built with matplotlib's object API on an Agg canvas (no pyplot state, no GUI, nothing
on stderr), and shown as PNG through IPython's display so they land in the executed notebook and
in nbgrader's feedback HTML as embedded images whatever the inline backend is.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _flat(a) -> np.ndarray:
    """Finite values only: a NaN or Inf would make np.histogram raise instead of drawing (the
    check's text message already reports them)."""
    flat = np.asarray(a, dtype=np.float64).ravel()
    return flat[np.isfinite(flat)]


def error_figure(title: str, *, diff=None, quant_errors: dict | None = None, bins: int = 60) -> Figure:
    """A figure with up to two histogram panels.

    ``diff``: elementwise (student − reference), any shape. ``quant_errors``: label → (x − x̂)
    arrays, overlaid in the second panel (e.g. ``{"yours": ..., "reference": ...}``).
    """
    panels = [p for p in ("diff", "quant") if (p == "diff" and diff is not None) or (p == "quant" and quant_errors)]
    fig = Figure(figsize=(4.2 * max(1, len(panels)), 2.8), dpi=80)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        if panel == "diff":
            d = _flat(diff)
            ax.hist(d, bins=bins, color="tab:red")
            ax.set_title("yours − reference")
            ax.set_xlabel(f"difference (max |·| = {np.max(np.abs(d)) if d.size else 0:.3g})")
        else:
            for i, (label, err) in enumerate(quant_errors.items()):
                e = _flat(err)
                ax.hist(e, bins=bins, alpha=0.55, label=f"{label} (MSE {np.mean(e ** 2):.3g})",
                        color=("tab:blue", "tab:orange", "tab:green")[i % 3])
            ax.set_title("quantization error x − x̂")
            ax.set_xlabel("error")
            ax.legend(fontsize=8)
        ax.set_ylabel("count")
    fig.suptitle(title, fontsize=10)
    # fixed margins instead of tight_layout(), which draws the figure twice (half the cost)
    fig.subplots_adjust(left=0.2 if len(panels) < 2 else 0.1, right=0.98, bottom=0.2, top=0.8, wspace=0.3)
    return fig


def figure_png(fig: Figure) -> bytes:
    """PNG bytes of a figure (Agg)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def show_figure(fig: Figure) -> bool:
    """Display ``fig`` as a PNG in the running notebook; returns False outside IPython."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # pragma: no cover
        return False
    if get_ipython() is None:
        return False
    display(Image(data=figure_png(fig), format="png"))
    return True
