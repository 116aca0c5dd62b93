import numpy as np

from labkit.viz import error_figure, figure_png, show_figure


def test_error_figure_has_one_panel_per_question_and_counts_every_element():
    rng = np.random.default_rng(0)
    d, e = rng.standard_normal(500), rng.standard_normal(300)
    fig = error_figure("t", diff=d, quant_errors={"yours": e, "reference": e * 2})
    left, right = fig.axes
    assert sum(p.get_height() for p in left.patches) == 500
    assert sum(p.get_height() for p in right.patches) == 600
    assert "MSE" in right.get_legend().get_texts()[0].get_text()
    assert len(error_figure("only diff", diff=d).axes) == 1


def test_png_bytes_and_no_display_outside_ipython():
    fig = error_figure("t", diff=np.zeros(10))
    assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"
    assert show_figure(fig) is False
