"""labkit.viz.histograms: panels count every element, the x-range shows the bulk of the data (an
outlier spike is counted, not allowed to squash the axis), log counts when one bin dominates,
figures are notebook-wide with all text on the canvas, and a wrong answer's MSE is never put
beside the reference's as if it were a score."""

import numpy as np

from labkit.viz import bulk_range, error_figure, figure_png, show_figure
from labkit.viz.style import DPI, NOTEBOOK_WIDTH_IN


def test_error_figure_has_one_panel_per_question_and_counts_every_element():
    rng = np.random.default_rng(0)
    d, e = rng.standard_normal(500), rng.standard_normal(300)
    fig = error_figure("t", diff=d, quant_errors={"reference": e, "yours": e * 1.01}, right=True)
    left, right = fig.axes
    outside_left = int(left.get_xlabel().split("; ")[1].split()[0]) if "outside" in left.get_xlabel() else 0
    assert sum(p.get_height() for p in left.patches) + outside_left == 500
    texts = [t.get_text() for t in right.get_legend().get_texts()]
    assert texts[0].startswith("reference (MSE") and texts[1].startswith("yours (MSE")
    assert len(error_figure("only diff", diff=d).axes) == 1


def test_the_x_range_follows_the_bulk_and_counts_the_outliers():
    rng = np.random.default_rng(1)
    d = rng.standard_normal(10_000) * 0.01
    d[:3] = 50.0                                  # a few far values: a clipping bug
    lo, hi = bulk_range(d)
    assert hi < 1.0 and lo > -1.0                 # the range is set by the bulk (±0.03), not by 50
    fig = error_figure("t", diff=d)
    ax = fig.axes[0]
    assert ax.get_xlim()[1] < 1.0 and "3 outside this range" in ax.get_xlabel()
    assert sum(p.get_height() for p in ax.patches) == d.size - 3


def test_a_spike_switches_to_log_counts_and_a_right_answer_says_so():
    d = np.zeros(5000)
    d[:40] = np.linspace(-1, 1, 40)               # a few spread errors next to a spike at 0
    assert error_figure("t", diff=d).axes[0].get_yscale() == "log"
    assert error_figure("t", diff=np.random.default_rng(2).uniform(-1, 1, 5000)).axes[0].get_yscale() == "linear"
    right = error_figure("t", diff=np.zeros(100)).axes[0]
    assert "all 100 differences are 0" in right.texts[0].get_text() and not right.patches


def test_a_wrong_answer_shows_no_competing_mse():
    rng = np.random.default_rng(3)
    e = rng.uniform(-0.5, 0.5, 1000)
    fig = error_figure("t", quant_errors={"reference": e, "yours": e * 0.5}, right=False)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "MSE" in texts[0] and "(MSE" not in texts[1] and "not a score" in texts[1]


def test_notebook_width_and_every_text_on_the_canvas():
    long_title = "Task 1.2 absmax_dequantize — visible check, case 'random codes with a long description' " * 2
    rng = np.random.default_rng(4)
    fig = error_figure(long_title, diff=rng.standard_normal(100), quant_errors={"reference": rng.standard_normal(100)})
    png = figure_png(fig)
    w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert w == round(NOTEBOOK_WIDTH_IN * DPI) and 200 < h < 500
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    for text in [fig._suptitle, *[t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label)],
                 *[t for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]]:
        bb = text.get_window_extent(renderer)
        assert bb.x0 >= -1 and bb.y0 >= -1 and bb.x1 <= canvas.x1 + 1 and bb.y1 <= canvas.y1 + 1, text.get_text()
    assert "_F" not in fig._suptitle.get_text() or "\\$" not in fig._suptitle.get_text()


def test_png_bytes_and_no_display_outside_ipython():
    fig = error_figure("t", diff=np.zeros(10))
    assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"
    assert show_figure(fig) is False
