"""labkit.widgets — the notebooks' sliders (ipywidgets + matplotlib).

Every ``*_explorer`` returns the live widget in Jupyter and does nothing under nbgrader's
autograde (``NBGRADER_EXECUTION`` is set there): a widget waiting for a front end would only cost
time, and a grader has no one to move the slider. The math behind each slider is a plain function
(``granularity_errors``, ``smoothing_summary``) so it is tested without a browser.
"""

from .granularity import GROUP_SETTINGS, granularity_errors, granularity_of, group_size_explorer
from .smoothing import SmoothingSummary, alpha_explorer, smoothing_summary, w8a8_output_error

__all__ = [
    "GROUP_SETTINGS", "granularity_errors", "granularity_of", "group_size_explorer",
    "SmoothingSummary", "alpha_explorer", "smoothing_summary", "w8a8_output_error",
]
