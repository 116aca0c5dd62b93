"""Plots for W8A8 / SmoothQuant: the α curve and the INT8-vs-FP8 comparison.

Built with matplotlib's object API on an Agg canvas (no pyplot state, nothing on stderr), like
``labkit.viz.histograms``; show them with ``labkit.viz.show_figure(fig)`` or save with
``fig.savefig(path)``.

* ``plot_alpha_sweep(*sweeps)`` — perplexity vs α, one line per format, with dashed lines for the
  baseline and for each format's unsmoothed W8A8: where a line dips below its dashed twin,
  smoothing helps.
* ``plot_format_comparison(comparison)`` — three panels (Δppl %, KL divergence, MMLU) with one bar
  per scheme, INT8 and FP8 in two colours, smoothed bars hatched.
"""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

COLORS = {"int8": "tab:blue", "fp8_e4m3": "tab:orange"}


def plot_alpha_sweep(*sweeps, title: str = "SmoothQuant W8A8: perplexity vs migration strength α") -> Figure:
    """One line per ``AlphaSweep`` (``labkit.eval.w8a8_comparison.alpha_sweep``)."""
    if not sweeps:
        raise ValueError("plot_alpha_sweep needs at least one AlphaSweep")
    fig = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for sw in sweeps:
        color = COLORS.get(sw.fmt, None)
        ax.plot(sw.alphas, sw.ppl, "o-", color=color, label=f"smoothquant-{sw.fmt}")
        ax.axhline(sw.unsmoothed_ppl, ls="--", color=color, lw=1, label=f"w8a8-{sw.fmt} (no smoothing)")
    ax.axhline(sweeps[0].baseline_ppl, ls=":", color="black", lw=1, label="baseline (float)")
    ax.set_xlabel("α (0: flatten weights … 1: flatten activations)")
    ax.set_ylabel(f"perplexity ({sweeps[0].tokens} tokens)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_format_comparison(comparison, title: str = "W8A8: INT8 vs FP8, with and without SmoothQuant") -> Figure:
    """Bars of Δppl (%), KL divergence and (if measured) MMLU accuracy for a ``FormatComparison``."""
    rows = comparison.rows
    panels = [("Δ perplexity vs baseline (%)", [100 * (r.ppl / comparison.baseline_ppl - 1) for r in rows]),
              ("KL(baseline ‖ quantized), nats", [r.kld for r in rows])]
    if all(r.mmlu is not None for r in rows):
        panels.append(("MMLU accuracy (%)", [100 * r.mmlu for r in rows]))
    fig = Figure(figsize=(4.0 * len(panels), 3.8))
    FigureCanvasAgg(fig)
    names = [r.scheme for r in rows]
    for i, (label, values) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        bars = ax.bar(range(len(rows)), values, color=[COLORS.get(r.fmt, "gray") for r in rows])
        for bar, r in zip(bars, rows):
            if r.alpha is not None:
                bar.set_hatch("//")
        if label.startswith("MMLU") and comparison.baseline_mmlu is not None:
            ax.axhline(100 * comparison.baseline_mmlu, ls=":", color="black", lw=1, label="baseline")
            ax.legend(fontsize=8)
        ax.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
