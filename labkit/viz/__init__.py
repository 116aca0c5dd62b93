"""labkit.viz — the lab's plots and tables: one palette and width (``style``), error histograms
(``histograms``, used by the grading checks), W8A8 plots (``w8a8``), relative-change bars (``bars``), rendered tables (``tables``)."""

from .bars import change_bars, relative_change
from .histograms import bulk_range, error_figure, figure_png, show_figure
from .style import COLORS, color_for, legend_outside, new_figure
from .tables import table

__all__ = ["change_bars", "relative_change", "error_figure", "figure_png", "show_figure", "bulk_range", "COLORS", "color_for", "legend_outside",
           "new_figure", "table"]
