"""labkit.viz: relative-change bars (from 0, full names, one colour per format, intervals), the one
palette, and rendered tables with units."""

import pytest

from labkit.viz import COLORS, change_bars, color_for, relative_change, table
from labkit.viz.style import DPI, NOTEBOOK_WIDTH_IN


def _inside(fig):
    renderer = fig.canvas.get_renderer()
    texts = [t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels())]
    texts += [t for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    for t in texts:
        bb = t.get_window_extent(renderer)
        if t.get_text() and not (bb.x0 >= -1 and bb.y0 >= -1 and bb.x1 <= fig.bbox.x1 + 1 and bb.y1 <= fig.bbox.y1 + 1):
            return t.get_text()
    return None


def test_one_colour_per_format_from_one_table():
    assert color_for("int8-row") == color_for("w8a8-int8") == color_for("int8-group128") == COLORS["int8"]
    assert color_for("fp8_e4m3-row") == color_for("smoothquant-fp8_e4m3") == COLORS["fp8_e4m3"]
    assert color_for("uint8") != color_for("int8") and color_for("int4-group32") == COLORS["int4"]
    assert color_for("mystery") == "#999999"


def test_change_bars_show_relative_change_from_zero_with_full_names():
    values = {"int8-tensor": 11.607, "int8-row": 11.206, "fp8_e4m3-tensor": 11.4}
    fig = change_bars(values, 11.125, intervals={"int8-tensor": 0.05, "int8-row": 0.1, "fp8_e4m3-tensor": 0.05})
    ax = fig.axes[0]
    heights = [round(p.get_height(), 2) for p in ax.patches[:3]]
    assert heights == [round(v, 2) for v in relative_change(values, 11.125).values()] == [4.33, 0.73, 2.47]
    assert ax.get_ylim()[0] <= 0                                   # bars start at 0: lengths compare
    assert [t.get_text() for t in ax.get_xticklabels()] == list(values)   # names in full
    assert ax.patches[0].get_facecolor() != ax.patches[2].get_facecolor()  # INT8 and FP8 differ
    assert ax.patches[1].get_hatch() == "//" and not ax.patches[0].get_hatch()  # +0.73 % within ±0.9 %
    assert fig.get_size_inches()[0] * DPI == pytest.approx(NOTEBOOK_WIDTH_IN * DPI)
    fig.canvas.draw()
    assert _inside(fig) is None
    assert "_F" not in ax.get_ylabel() or "\\$" not in ax.get_ylabel()
    with pytest.raises(ValueError, match="non-zero baseline"):
        relative_change({"a": 1.0}, 0.0)


def test_table_renders_units_and_aligns_numbers():
    t = table([{"scheme": "int8-row", "ppl": 11.206, "Δppl": 0.73}, {"scheme": "int8-tensor", "ppl": 11.607, "Δppl": 4.33}],
              units={"Δppl": "%"}, formats={"Δppl": "+.2f"}, caption="SmolLM2-135M-Instruct, 512 tokens")
    html = t._repr_html_()
    assert "<th" in html and "Δppl (%)" in html and "+0.73" in html and "text-align:right" in html
    assert "SmolLM2-135M-Instruct" in html and "<script" not in html
    lines = str(t).splitlines()
    assert lines[0].split() == ["scheme", "ppl", "Δppl", "(%)"] and lines[2].endswith("+0.73")
    assert len({len(line) for line in lines[:4]}) == 1            # aligned columns
    with pytest.raises(ValueError, match="unknown columns"):
        table([{"a": 1}], units={"b": "s"})
    with pytest.raises(TypeError, match="columns="):
        table([(1, 2)])
    assert str(table([(1, 2.5)], columns=["n", "x"])).splitlines()[-1].split() == ["1", "2.5"]
