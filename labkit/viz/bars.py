"""Bar charts of compared metrics: relative change from a baseline, one colour per format.

A bar chart of raw perplexities whose y-axis starts at 11.7 makes +3.35 % look six times worse than
+0.40 % *visually* and lies about nothing in its numbers — but the eye reads bar lengths. So
``change_bars`` draws the **relative change** from the baseline (%), bars start at 0, and:

* each bar's colour is its format's (``labkit.viz.style.color_for``: INT8 blue, FP8 orange…), the
  legend lists formats once, to the right of the axes;
* names are written in full (rotated when long), never cut to 4 characters;
* an optional ± interval per bar (e.g. the bootstrap interval of a perplexity, also in %) is drawn
  as an error bar, and a bar whose interval contains 0 is drawn hatched: "within noise".

Worked example: baseline 11.125, int8-row 11.206 → +0.73 %; int8-tensor 11.607 → +4.33 %.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .style import color_for, legend_outside, new_figure, plain


def relative_change(values: dict[str, float], baseline: float) -> dict[str, float]:
    """name → 100·(value / baseline − 1) in %."""
    if baseline == 0:
        raise ValueError("relative change needs a non-zero baseline")
    return {k: 100.0 * (v / baseline - 1.0) for k, v in values.items()}


def change_bars(values: dict[str, float], baseline: float, *, metric: str = "perplexity",
                intervals: dict[str, float] | None = None, title: str = "", ax=None) -> Figure:
    """Bars of the relative change of ``values`` (name → metric) from ``baseline``, in %.

    ``intervals``: name → half-width of the value's interval (same units as ``values``), drawn as
    error bars in %. Returns the figure (a new notebook-wide one unless ``ax`` is given)."""
    if not values:
        raise ValueError("change_bars needs at least one value")
    fig = ax.figure if ax is not None else None
    if ax is None:
        fig, (ax,) = new_figure(1, height=3.4)
    change = relative_change(values, baseline)
    names = list(values)
    colors = [color_for(n) for n in names]
    err = [100.0 * intervals[n] / baseline if intervals and n in intervals else 0.0 for n in names]
    bars = ax.bar(range(len(names)), [change[n] for n in names], color=colors,
                  yerr=err if intervals else None, capsize=3, ecolor="#333333")
    for bar, n, e in zip(bars, names, err):
        if intervals and n in intervals and abs(change[n]) <= e:
            bar.set_hatch("//")
            bar.set_alpha(0.6)
    ax.axhline(0.0, color="black", lw=0.8)
    long = max(len(n) for n in names) > 8
    ax.set_xticks(range(len(names)), [plain(n) for n in names], rotation=30 if long else 0,
                  ha="right" if long else "center", fontsize=8)
    ax.set_ylabel(plain(f"Δ {metric} vs baseline (%)"))
    ax.set_title(plain(title or f"{metric}: change from the float baseline {baseline:.4g}"), fontsize=10)
    seen = {}
    for n, c in zip(names, colors):
        seen.setdefault(c, n.split("-")[0] if "-" in n else n)
    handles = [Patch(color=c, label=label) for c, label in seen.items()]
    if intervals:
        handles.append(Patch(facecolor="white", edgecolor="#333333", hatch="//", label="within its interval"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


__all__ = ["change_bars", "relative_change", "legend_outside"]
