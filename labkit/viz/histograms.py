"""Error histograms: where a quantizer's error lives, and where a student's answer departs from ours.

Two panels answer two questions:

* **left, yours − reference**: for a correct answer every difference is 0 — the panel then says
  "all N differences are 0 ✓" instead of drawing a lone bar; a constant ratio error spreads it
  proportionally to x, a rounding bug gives spikes at ±one step, a clipping bug a few far values;
* **right, quantization error x − x̂**: the error the method itself makes, for labkit's x̂ and, when
  your answer matches, yours. A wrong answer's error is drawn but its MSE is *not* printed beside
  the reference's: a lower MSE does not make a wrong answer better (the task is to match the
  reference's rounding and clipping, e.g. a scale of absmax/128 gives smaller errors for most
  values and clips the largest).

Axes show the data: the x-range is set by the bulk of the values (0.1 %–99.9 % quantiles, widened
by a quarter each side), values outside it are counted in the x-label, and counts switch to a log scale when one
bin holds more than 20× the median of the non-empty ones (a spike would flatten everything else).

Figures use matplotlib's object API on an Agg canvas (``labkit.viz.style``: notebook width,
constrained layout so titles are never clipped), shown as PNG through IPython's display so they land
in the executed notebook and in nbgrader's feedback HTML whatever the inline backend is.
"""

from __future__ import annotations

import io
import textwrap

import numpy as np
from matplotlib.figure import Figure

from .style import COLORS, new_figure, plain


def _flat(a) -> np.ndarray:
    """Finite values only: a NaN or Inf would make np.histogram raise instead of drawing (the
    check's text message already reports them)."""
    flat = np.asarray(a, dtype=np.float64).ravel()
    return flat[np.isfinite(flat)]


def bulk_range(values: np.ndarray, lo: float = 0.001, hi: float = 0.999) -> tuple[float, float]:
    """The x-range that holds the bulk of ``values``: their [lo, hi] quantiles, widened by 25 % each side
    (and never empty: a constant array gets ±1 % of its size, or ±1 around 0)."""
    if values.size == 0:
        return -1.0, 1.0
    a, b = (float(v) for v in np.quantile(values, [lo, hi]))
    if b <= a:
        pad = abs(a) * 0.01 or 1.0
        return a - pad, b + pad
    pad = 0.25 * (b - a)
    return a - pad, b + pad


def _hist(ax, values: np.ndarray, span, bins: int, **kwargs) -> tuple[int, np.ndarray]:
    """Histogram of the values inside ``span``; returns how many fell outside."""
    inside = values[(values >= span[0]) & (values <= span[1])]
    counts, _, _ = ax.hist(inside, bins=bins, range=span, **kwargs)
    return int(values.size - inside.size), np.asarray(counts)


def _log_if_spiky(ax, counts: np.ndarray) -> None:
    nonzero = counts[counts > 0]
    if nonzero.size and nonzero.max() > 20 * np.median(nonzero):
        ax.set_yscale("log")
        ax.set_ylabel("count (log)")


def error_figure(title: str, *, diff=None, quant_errors: dict | None = None, bins: int = 60,
                 right: bool | None = None) -> Figure:
    """A figure with up to two histogram panels.

    ``diff``: elementwise (student − reference), any shape. ``quant_errors``: label → (x − x̂)
    arrays, overlaid in the second panel (``{"reference": ..., "yours": ...}``). ``right``: whether
    the student's answer matched (its MSE is shown only then); ``None`` shows every MSE.
    """
    panels = [p for p in ("diff", "quant") if (p == "diff" and diff is not None) or (p == "quant" and quant_errors)]
    fig, axes = new_figure(len(panels), height=3.2)
    for ax, panel in zip(axes, panels):
        ax.set_ylabel("count")
        if panel == "diff":
            d = _flat(diff)
            ax.set_title("yours − reference", fontsize=10)
            if d.size and not np.any(d):
                ax.text(0.5, 0.5, f"all {d.size} differences are 0 ✓", ha="center", va="center",
                        transform=ax.transAxes, fontsize=10)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            span = bulk_range(d)
            outside, counts = _hist(ax, d, span, bins, color=COLORS["yours"])
            _log_if_spiky(ax, counts)
            note = f"; {outside} outside this range" if outside else ""
            ax.set_xlabel(f"difference (max |·| = {np.max(np.abs(d)) if d.size else 0:.3g}{note})", fontsize=9)
        else:
            values = {label: _flat(err) for label, err in quant_errors.items()}
            span = bulk_range(values.get("reference", np.concatenate(list(values.values()))))
            total_outside, spiky = 0, np.zeros(bins)
            for label, e in values.items():
                mse = float(np.mean(e ** 2)) if e.size else float("nan")
                if label == "reference" or right or right is None:
                    text = f"{label} (MSE {mse:.3g})"
                else:
                    text = f"{label} — does not match the reference (its MSE is not a score)"
                outside, counts = _hist(ax, e, span, bins, alpha=0.55, label=text,
                                        color=COLORS.get(label, "#999999"))
                total_outside += outside
                spiky = np.maximum(spiky, counts)
            _log_if_spiky(ax, spiky)
            ax.set_title("quantization error x − x̂", fontsize=10)
            note = f"; {total_outside} values outside this range" if total_outside else ""
            ax.set_xlabel(f"error{note}", fontsize=9)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), fontsize=8, frameon=False,
                      title="the goal is to match the reference, not to beat its MSE", title_fontsize=8)
    fig.suptitle(plain("\n".join(textwrap.wrap(title, 110))), fontsize=10)
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
