"""Progress for long cells and commands: ONE bar over a whole piece of work, with an ETA.

In a notebook, a cell that evaluates several models should show a single bar that fills once —
not one bar per model that restarts, which looks like the cell started over. So:

    from labkit.eval.progress import cell_progress
    with cell_progress(len(schemes), desc="12 schemes × perplexity") as bar:
        for scheme in schemes:
            evaluate(scheme)          # its inner progress(...) loops move THIS bar within the step
            bar.advance()             # the step is done

Inside ``cell_progress``, every ``progress(items)`` of labkit (perplexity windows, MMLU subjects…)
draws no bar of its own; it moves the outer bar by ``1/len(items)`` of the current step, so the
ETA (elapsed / fraction done × what is left) is updated all along; the bar never moves back. When the block ends, the bar is
replaced by one line with the measured time ("12 schemes × perplexity: done in 1 min 43 s").

Where it is drawn:
* in IPython/Jupyter: as a display output updated in place (text/plain and HTML) — never on
  stderr, so a test cell stays clean;
* in a terminal (``labkit eval``): tqdm on stderr (stdout holds results, e.g. ``--json``);
* nowhere under nbgrader autograde (``NBGRADER_EXECUTION``) or with ``LABKIT_PROGRESS=0``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_ACTIVE: list["Bar"] = []


def progress_enabled() -> bool:
    return os.environ.get("LABKIT_PROGRESS", "1") != "0" and not os.environ.get("NBGRADER_EXECUTION")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def format_seconds(s: float) -> str:
    """``95`` → ``1 min 35 s``; ``7.2`` → ``7 s``."""
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


class Bar:
    """A bar over ``total`` steps (fractions allowed). ``advance(n)`` moves it; drawn at most every
    ``interval`` seconds. ``line()`` is what is shown: ``desc  ███░░  3.5/12 · 40 s · ETA 1 min 37 s``."""

    def __init__(self, total: float, desc: str = "", interval: float = 0.5, clock=time.monotonic):
        if total <= 0:
            raise ValueError(f"progress bar total must be > 0, got {total}")
        self.total, self.desc, self.interval, self.clock = float(total), desc, interval, clock
        self.steps = 0.0      # whole steps finished (advance)
        self.frac = 0.0       # progress inside the current step (inner loops), 0 ≤ frac < 1
        self.start = clock()
        self._last = -1e9
        self._handle = None
        self._tqdm = None
        self.enabled = progress_enabled()

    @property
    def done(self) -> float:
        return min(self.total, self.steps + self.frac)

    def eta(self) -> float | None:
        if self.done <= 0:
            return None
        elapsed = self.clock() - self.start
        return elapsed / self.done * (self.total - self.done)

    def line(self) -> str:
        frac = min(1.0, self.done / self.total)
        filled = int(round(24 * frac))
        eta = self.eta()
        tail = f" · ETA {format_seconds(eta)}" if eta is not None and frac < 1 else ""
        done = f"{self.done:.0f}" if abs(self.done - round(self.done)) < 1e-9 else f"{self.done:.1f}"
        return (f"{self.desc + '  ' if self.desc else ''}{'█' * filled}{'░' * (24 - filled)}  {done}/{self.total:.0f}"
                f" · {format_seconds(self.clock() - self.start)}{tail}")

    def advance(self, n: float = 1.0) -> None:
        """``n`` more steps finished."""
        self.steps = min(self.total, self.steps + n)
        self.frac = 0.0
        self._draw()

    def within_step(self, fraction: float) -> None:
        """The current step is ``fraction`` done (inner loops call this; it never moves back)."""
        self.frac = max(self.frac, min(0.99, float(fraction)))
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if _in_notebook():
            from IPython.display import display
            if self._handle is None:
                self._handle = display({"text/plain": self.line()}, raw=True, display_id=True)
            else:
                self._handle.update({"text/plain": self.line()}, raw=True)
        else:
            if self._tqdm is None:
                from tqdm import tqdm
                self._tqdm = tqdm(total=self.total, desc=self.desc or None, file=sys.stderr, leave=False,
                                  dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} [{elapsed}<{remaining}]")
            self._tqdm.n = self.done
            self._tqdm.refresh()

    def close(self) -> str:
        """Finish: replace the bar by one line with the measured time; returns that line."""
        summary = f"{self.desc + ': ' if self.desc else ''}done in {format_seconds(self.clock() - self.start)}"
        if self._handle is not None:
            self._handle.update({"text/plain": summary}, raw=True)
        elif self._tqdm is not None:
            self._tqdm.close()
        return summary


@contextlib.contextmanager
def cell_progress(total: float, desc: str = "") -> Iterator[Bar]:
    """One bar for the whole block (see the module docstring): call ``bar.advance()`` when a step is
    done; labkit's ``progress`` loops inside a step move the bar within it."""
    bar = Bar(total, desc)
    bar._draw(force=True)
    _ACTIVE.append(bar)
    try:
        yield bar
    finally:
        _ACTIVE.remove(bar)
        bar.close()


def _inner(items: Iterable[T], n: int | None, bar: Bar) -> Iterator[T]:
    for i, item in enumerate(items, 1):
        yield item
        if n:
            bar.within_step(i / n)


def progress(items: Iterable[T], desc: str = "", total: int | None = None) -> Iterable[T]:
    """``items`` with progress: inside ``cell_progress`` they advance that one bar by fractions of a
    step; otherwise they get their own bar (notebook display, or tqdm on stderr in a terminal), and
    nothing at all when bars are off."""
    if _ACTIVE:
        n = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
        return _inner(items, n, _ACTIVE[-1])
    if not progress_enabled():
        return items
    if _in_notebook():
        n = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
        if not n:
            return items
        return _own_bar(items, n, desc)
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc or None, total=total, file=sys.stderr, leave=False, dynamic_ncols=True)


def _own_bar(items: Iterable[T], n: int, desc: str) -> Iterator[T]:
    bar = Bar(n, desc)
    bar._draw(force=True)
    try:
        for item in items:
            yield item
            bar.advance()
    finally:
        bar.close()
