"""labkit.eval.progress: one bar over a cell's work (inner loops move it, never restart it), an ETA
from the measured pace, a closing line with the time, and nothing drawn under autograde."""

import pytest

from labkit.eval import progress as P


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_eta_is_elapsed_over_done_times_what_is_left():
    clock = Clock()
    bar = P.Bar(4, "sweep", clock=clock)
    assert bar.eta() is None
    clock.t = 30.0
    bar.advance()                       # 1 of 4 steps in 30 s → 90 s left
    assert bar.eta() == pytest.approx(90.0)
    assert "1/4" in bar.line() and "ETA 1 min 30 s" in bar.line()
    assert bar.close() == "sweep: done in 30 s"


def test_inner_loops_move_one_outer_bar_and_never_back(monkeypatch, capfd):
    monkeypatch.setenv("LABKIT_PROGRESS", "1")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    seen = []
    with P.cell_progress(3, desc="3 models") as bar:
        for model in range(3):
            for _ in P.progress(range(10), desc="perplexity"):      # would be a bar per model without the outer one
                seen.append(bar.done)
            for _ in P.progress(range(4), desc="kl"):                # a second, shorter loop in the same step
                seen.append(bar.done)
            bar.advance()
        assert bar.done == 3
    assert seen == sorted(seen) and seen[-1] < 3                     # monotonic: the cell never looks restarted
    assert P._ACTIVE == []


def test_nothing_is_drawn_under_autograde(monkeypatch, capfd):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    items = list(range(5))
    assert P.progress(items, desc="x") is items
    with P.cell_progress(2, desc="y") as bar:
        list(P.progress(items))
        bar.advance(2)
    out = capfd.readouterr()
    assert out.err == "" and out.out == ""


def test_a_bar_needs_work():
    with pytest.raises(ValueError, match="total must be > 0"):
        P.Bar(0)


def test_format_seconds():
    assert [P.format_seconds(s) for s in (7.2, 95, 3700)] == ["7 s", "1 min 35 s", "1 h 01 min"]
