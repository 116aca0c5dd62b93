"""Shared plumbing of the sliders: the autograde switch and a redraw-into-an-Output helper."""

from __future__ import annotations

import os


def under_autograde() -> bool:
    """True inside ``nbgrader autograde`` (or any run that sets NBGRADER_EXECUTION)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def slider_app(slider, render) -> object:
    """A VBox of ``slider`` and an Output that shows ``render(value)`` (a figure and a text line)
    now and after every move of the slider."""
    import ipywidgets as W
    from IPython.display import clear_output

    from labkit.viz import show_figure

    out = W.Output()

    def redraw(value):
        fig, text = render(value)
        with out:
            clear_output(wait=True)
            show_figure(fig)
            print(text)

    slider.observe(lambda change: redraw(change["new"]), names="value")
    redraw(slider.value)
    return W.VBox([slider, out])
