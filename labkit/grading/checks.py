"""``check(name, fn, seed=..., points=...)``: the one call a notebook's test cell makes.

The numpy exercises of ``exercises.py`` are registered with the case engine (``cases.py``) here,
one ``CaseCheck`` per ``Exercise`` — so numpy, torch and benchmark checks share one loop, one
tripwire, one answer record and one out-of-kernel re-check. What ``check`` adds for numpy:

* seeded inputs from ``numpy.random.default_rng(seed)`` passed as keyword arguments;
* ``parts`` (scale, codes…): a part earns its weight only if it is right on every case;
* the references of other fill-ins a function may call (``deps``) swapped in while it runs;
* the figure: histograms of (yours − reference) and of the quantization error x − x̂, shown as an
  image in the notebook and thus in the feedback page.

A visible check (``points=None``) prints the same verdict and returns nothing; a graded one returns
a ``Score``. Neither raises for a wrong or unwritten answer: Run All goes on, and later cells use
``use_or_reference`` to fall back to labkit's version. Worked example: ``check("absmax_quantize",
f, seed=7, points=3)`` with a right scale and truncated codes prints "1/3 points", "✓ scale …",
"✗ codes q … truncation …?" and returns 1.0.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from labkit.viz import error_figure, show_figure  # imports matplotlib now, in the setup cell: a font-cache
                                                 # message on a fresh machine must not land in a test cell

from . import integrity
from .cases import CaseCheck, CaseResult, Score, grade, register, spec_for
from .exercises import EXERCISES, Exercise

AUTOGRADE = "NBGRADER_EXECUTION"
autograding = integrity.autograding


def _plot_for(ex: Exercise):
    def plot(results: list[CaseResult], points) -> None:
        # the largest failing case (the worked example is too small for a histogram), else the largest
        failing = [r for r in results if r.failures] or results
        case = max(failing, key=lambda r: sum(np.size(v) for v in r.args.values() if isinstance(v, np.ndarray)))
        diff, qerr = None, {}
        try:
            with integrity.quiet():
                if case.got is not None:
                    g, r = np.asarray(case.got[0], np.float64), np.asarray(case.ref[0], np.float64)
                    if g.shape == r.shape:
                        diff = g - r
                if ex.quant_error is not None:
                    qerr["reference"] = ex.quant_error(case.args, case.ref)
                    if case.got is not None:
                        qerr["yours"] = ex.quant_error(case.args, case.got)
        except Exception:  # a malformed answer: the text message already says why; plot what we can
            qerr = {k: v for k, v in qerr.items() if k == "reference"}
        if diff is None and not qerr:
            return
        verdict = "graded" if points is not None else "visible check"
        with integrity.quiet():
            fig = error_figure(f"{ex.task} {ex.name} — {verdict}, case '{case.label}'", diff=diff,
                               quant_errors=qerr, right=not case.failures)
        show_figure(fig)
    return plot


def _spec(ex: Exercise) -> CaseCheck:
    deps = MappingProxyType({d: EXERCISES[d].reference for d in ex.deps})
    return CaseCheck(name=ex.name, task=ex.task, reference=ex.reference,
                     cases=lambda seed, ex=ex: ex.cases(np.random.default_rng(seed)), parts=ex.parts,
                     n_outputs=ex.n_outputs, watch=("quant",), deps=deps, language="numpy", plot=_plot_for(ex))


for _ex in EXERCISES.values():
    if _ex.reference is not None:
        register(_spec(_ex))


def check(name: str, fn, *, seed: int = 0, points: float | None = None, plot: bool = True) -> Score | None:
    """Compare the student's ``fn`` with labkit's reference for exercise ``name``.

    ``seed`` picks the input cases (visible checks use 0; hidden tests other seeds). ``points``:
    the test cell's points — returns a ``Score`` (partial credit) — or ``None`` for a visible check.
    Prints the points and one ✓/✗ line per part; never raises for a wrong answer. Under
    ``NBGRADER_EXECUTION`` the plot is still drawn (it is what the feedback page shows); pass
    ``plot=False`` to skip it. Any registered check (torch, bench) may be named too.
    """
    if name in EXERCISES and EXERCISES[name].reference is None:
        raise RuntimeError(f"labkit.quant has no reference {name}; reinstall labkit (make setup)")
    if name not in EXERCISES:
        spec_for(name)  # a torch or bench check, or a KeyError naming the known ones
    if points is None:
        ex = EXERCISES.get(name)
        if ex is not None and ex.deps:
            print(f"  ({name} is checked with labkit's {', '.join(ex.deps)}, so a mistake there does not count twice)")
    return grade(name, fn, seed=seed, points=points, plot=plot)


integrity.freeze_module(__name__)
