"""labkit.viz — the lab's plots: error histograms (used by grading checks and notebooks)."""

from .histograms import error_figure, figure_png, show_figure

__all__ = ["error_figure", "figure_png", "show_figure"]
