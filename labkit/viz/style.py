"""One look for every figure of the lab: the palette (one colour per format), the width of a
notebook, and the helpers that keep titles and legends readable.

* ``COLORS`` — the single palette table: each number format (and "yours"/"reference" in the
  checks' figures) has one colour everywhere, so INT8 is the same blue in notebooks 03, 06 and 08.
* ``NOTEBOOK_WIDTH_IN`` × ``DPI`` — 8.6 in at 100 dpi = 860 px, the width of a JupyterLab cell's
  output area at the default zoom; figures are that wide (or narrower), never 336 px thumbnails.
* ``new_figure(n_panels, height)`` — a ``Figure`` on an Agg canvas with constrained layout (titles
  and tick labels inside the canvas, without ``tight_layout``'s second draw).
* ``color_for(name)`` — a scheme name such as ``int8-row`` or ``smoothquant-fp8_e4m3`` → its
  format's colour (longest matching prefix; grey for an unknown format).
* ``legend_outside(ax)`` — the legend to the right of the axes, off the data.
* ``plain(text)`` — a label safe from mathtext: ``‖·‖_F`` stays ``‖·‖_F`` and not a subscript F.
"""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

NOTEBOOK_WIDTH_IN = 8.6
DPI = 100

COLORS = {
    "float": "#4d4d4d",      # the baseline
    "bf16": "#7f7f7f",
    "int8": "#1f77b4",       # blue
    "int4": "#2ca02c",       # green
    "uint8": "#17becf",      # teal
    "fp8_e4m3": "#ff7f0e",   # orange
    "fp8_e5m2": "#d62728",   # red
    "fp8": "#ff7f0e",
    "nf4": "#9467bd",        # purple
    "gptq": "#8c564b",       # brown
    "yours": "#d62728",
    "reference": "#1f77b4",
}


def color_for(name: str) -> str:
    """The colour of the format in ``name`` (e.g. ``"w8a8-int8"`` → int8's); grey when unknown."""
    key = (name or "").lower()
    for fmt in sorted(COLORS, key=len, reverse=True):
        if fmt in key.replace("-", "_").split("_") or key.startswith(fmt) or f"-{fmt}" in key or f"_{fmt}" in key:
            return COLORS[fmt]
    return "#999999"


def new_figure(n_panels: int = 1, height: float = 3.2, width: float | None = None) -> tuple[Figure, list]:
    """A figure as wide as a notebook cell with ``n_panels`` side by side; returns (fig, axes)."""
    fig = Figure(figsize=(width or NOTEBOOK_WIDTH_IN, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(1, max(1, n_panels), squeeze=False)[0])
    return fig, axes


def legend_outside(ax, **kwargs) -> None:
    """Put ``ax``'s legend to the right of the plot, where it cannot hide a bar or a line."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8, frameon=False, **kwargs)


def plain(text: str) -> str:
    """Escape ``$`` so matplotlib never reads a label as mathtext (``‖C‖_F`` stays literal)."""
    return text.replace("$", r"\$")
