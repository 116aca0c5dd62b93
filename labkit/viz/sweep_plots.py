"""The plots of ``labkit sweep``: one bar per scheme and mode for a metric, the baseline as a line.

Built with matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``): no pyplot
state and no ``matplotlib.use``, so drawing here never changes the backend of a student's notebook.

* ``sweep_figure(lines, key, title, log)`` — the figure (None when no quantized line has ``key``);
* ``plot(lines, key, out_png, title, log)`` — the same, saved as a PNG; returns the path or None;
* ``add_arguments`` / ``run`` — the ``labkit sweep`` command: ``labkit.eval.sweep`` measures and
  writes the tables, then this module draws ``ppl.png`` and ``kld.png`` unless ``--no-plots``.

``lines`` are ``labkit.eval.sweep.summarize`` rows: ``{"scheme", "mode", "ppl", "kld", ...}``, the
baseline with scheme ``"none"``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..eval import sweep as _sweep

PLOTS = (("ppl", "Perplexity per scheme (lower is better)", False),
         ("kld", "KL(baseline || quantized), nats (lower is better)", True))


def sweep_figure(lines: list[dict], key: str, title: str, log: bool = False) -> Figure | None:
    """Grouped bars of ``key`` per scheme (modes side by side); the baseline as a dashed line."""
    quantized = [line for line in lines if line["scheme"] != "none" and key in line]
    if not quantized:
        return None
    schemes = list(dict.fromkeys(line["scheme"] for line in quantized))
    modes = list(dict.fromkeys(line["mode"] for line in quantized))
    width = 0.8 / len(modes)
    fig = Figure(figsize=(max(5.0, 0.9 * len(schemes) + 2), 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, mode in enumerate(modes):
        xs, ys = [], []
        for j, s in enumerate(schemes):
            line = next((x for x in quantized if x["scheme"] == s and x["mode"] == mode), None)
            if line is not None:
                xs.append(j + (i - (len(modes) - 1) / 2) * width)
                ys.append(line[key])
        ax.bar(xs, ys, width=width, label=mode)
    base = next((line.get(key) for line in lines if line["scheme"] == "none"), None)
    if base is not None and not log:
        ax.axhline(base, color="k", linestyle="--", linewidth=1, label="baseline")
        # 8-bit schemes sit within a few % of the baseline: zoom on that band instead of starting at 0
        values = [line[key] for line in quantized] + [base]
        span = max(values) - min(values)
        ax.set_ylim(min(values) - 0.5 * span - 1e-9, max(values) + 0.3 * span + 1e-9)
    if log:
        ax.set_yscale("log")
    ax.set_xticks(range(len(schemes)))
    ax.set_xticklabels(schemes, rotation=30, ha="right")
    ax.set_ylabel(key)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot(lines: list[dict], key: str, out_png: Path, title: str, log: bool = False) -> Path | None:
    """``sweep_figure`` saved to ``out_png`` (120 dpi); None when there is nothing to plot."""
    fig = sweep_figure(lines, key, title, log)
    if fig is None:
        return None
    fig.savefig(out_png, dpi=120)
    return Path(out_png)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _sweep.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """``labkit sweep``: the grid and tables (``labkit.eval.sweep.sweep``), then the plots."""
    result = _sweep.sweep(args)
    if not args.no_plots:
        for key, title, log in PLOTS:
            png = plot(result.lines, key, result.out / f"{key}.png", f"{result.config.model}: {title}", log)
            if png:
                result.written.append(png)
    _sweep.report(result)
    return 0
