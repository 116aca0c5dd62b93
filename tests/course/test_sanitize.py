"""labkit.course.sanitize.restore_order: graded cells back in source order, helpers kept with the
fill-in below them, an ordered notebook unchanged (hand-built cell lists, no nbgrader run)."""

from __future__ import annotations

from labkit.course.sanitize import restore_order

SOURCE = ["setup", "q", "test_q", "dq", "test_dq"]


def _cells(*names):
    return [{"n": n, "metadata": {"nbgrader": {"grade_id": n}} if n in SOURCE else {}} for n in names]


def _names(cells):
    return [c["n"] for c in cells]


def test_ordered_notebook_is_unchanged():
    cells = _cells("title", "setup", "md1", "q", "scratch", "test_q", "md2", "dq", "test_dq", "end")
    assert restore_order(cells, SOURCE) == cells


def test_test_cell_dragged_above_its_fill_in_goes_back_below():
    cells = _cells("setup", "md1", "test_q", "helper", "q", "dq", "test_dq")
    assert _names(restore_order(cells, SOURCE)) == ["setup", "helper", "q", "md1", "test_q", "dq", "test_dq"]


def test_fill_in_moved_to_the_end_comes_back_with_its_helper():
    cells = _cells("setup", "test_q", "dq", "test_dq", "helper", "q", "tail")
    assert _names(restore_order(cells, SOURCE)) == ["setup", "helper", "q", "test_q", "dq", "test_dq", "tail"]
