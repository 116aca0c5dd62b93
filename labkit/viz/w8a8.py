"""Plots for W8A8 / SmoothQuant: the α curve and the INT8-vs-FP8 comparison.

Built with matplotlib's object API on an Agg canvas (no pyplot state, nothing on stderr), like
``labkit.viz.histograms``; show them with ``labkit.viz.show_figure(fig)`` or save with
``fig.savefig(path)``.

* ``plot_alpha_sweep(*sweeps)`` — perplexity vs α, one line per format, with dashed lines for the
  baseline and for each format's unsmoothed W8A8: where a line dips below its dashed twin,
  smoothing helps.
* ``plot_format_comparison(comparison)`` — three panels (Δppl %, KL divergence, MMLU) with one bar
  per scheme, INT8 and FP8 in their colours of the one palette (``labkit.viz.style``), smoothed
  bars hatched, the legend beside the panels, scheme names in full.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .style import COLORS, color_for, legend_outside, new_figure, plain


def plot_alpha_sweep(*sweeps, title: str = "SmoothQuant W8A8: perplexity vs migration strength α") -> Figure:
    """One line per ``AlphaSweep`` (``labkit.eval.w8a8_comparison.alpha_sweep``)."""
    if not sweeps:
        raise ValueError("plot_alpha_sweep needs at least one AlphaSweep")
    fig, (ax,) = new_figure(1, height=3.6)
    for sw in sweeps:
        color = color_for(sw.fmt)
        ax.plot(sw.alphas, sw.ppl, "o-", color=color, label=f"smoothquant-{sw.fmt}")
        ax.axhline(sw.unsmoothed_ppl, ls="--", color=color, lw=1, label=f"w8a8-{sw.fmt} (no smoothing)")
    ax.axhline(sweeps[0].baseline_ppl, ls=":", color="black", lw=1, label="baseline (float)")
    ax.set_xlabel("α (0: flatten weights … 1: flatten activations)")
    ax.set_ylabel(f"perplexity ({sweeps[0].tokens} tokens)")
    ax.set_title(plain(title), fontsize=10)
    legend_outside(ax)
    return fig


def plot_format_comparison(comparison, title: str = "W8A8: INT8 vs FP8, with and without SmoothQuant") -> Figure:
    """Bars of Δppl (%), KL divergence and (if measured) MMLU accuracy for a ``FormatComparison``."""
    rows = comparison.rows
    panels = [("Δ perplexity vs baseline (%)", [100 * (r.ppl / comparison.baseline_ppl - 1) for r in rows]),
              ("KL(baseline ‖ quantized), nats", [r.kld for r in rows])]
    if all(r.mmlu is not None for r in rows):
        panels.append(("MMLU accuracy (%)", [100 * r.mmlu for r in rows]))
    fig, axes = new_figure(len(panels), height=3.6)
    names = [r.scheme for r in rows]
    for ax, (label, values) in zip(axes, panels):
        bars = ax.bar(range(len(rows)), values, color=[color_for(r.fmt) for r in rows])
        for bar, r in zip(bars, rows):
            if r.alpha is not None:
                bar.set_hatch("//")
        if label.startswith("MMLU") and comparison.baseline_mmlu is not None:
            ax.axhline(100 * comparison.baseline_mmlu, ls=":", color="black", lw=1)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xticks(range(len(rows)), [plain(n) for n in names], rotation=30, ha="right", fontsize=8)
        ax.set_title(plain(label), fontsize=9)
    fmts = list(dict.fromkeys(r.fmt for r in rows))
    handles = [Patch(color=color_for(f), label=f) for f in fmts]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="SmoothQuant"))
    if len(panels) > 2 and comparison.baseline_mmlu is not None:
        from matplotlib.lines import Line2D
        handles.append(Line2D([], [], ls=":", color="black", label="baseline MMLU"))
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.suptitle(plain(title), fontsize=10)
    return fig
