"""``check(name, fn, seed=..., points=...)``: the one call a notebook's test cell makes.

What a check does, in order:

1. refuses to grade a notebook that patched numpy or builtins (see ``integrity.py``);
2. draws the exercise's seeded input cases (``exercises.py``) and, for each, calls the student's
   function on copies of the inputs — quietly (nothing reaches stderr), with the tripwire armed
   (calling labkit's reference instead of computing scores 0) and with the references of other
   fill-ins it may call (``deps``) swapped in, so one wrong function costs only its own points;
3. compares part by part (e.g. scale, then codes); a part earns its weight only if it is right on
   every case;
4. plots the histogram of (yours − reference) and of the quantization error x − x̂, shown as an
   image in the notebook and thus in the feedback page;
5. returns the points as a ``Score`` (a float: nbgrader reads a test cell's last value as partial
   credit) and prints one line per part. Zero points raise a ``GradingError`` with every reason.

A visible check (``points=None``) runs the same comparison and returns nothing, so the student's
own notebook shows the verdict without a stray number; it raises only when nothing is right.
Worked example: ``check("absmax_quantize", f, seed=7, points=3)`` with a right scale and
truncated codes prints "scale ✓ / codes q ✗ …" and returns 1.0 (1 of 3 points).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import numpy as np

from labkit.viz import error_figure, show_figure  # imports matplotlib now, in the setup cell: a font-cache
                                                 # message on a fresh machine must not land in a test cell

from . import integrity
from .compare import GradingError
from .exercises import EXERCISES, Exercise

AUTOGRADE = "NBGRADER_EXECUTION"


class Score(float):
    """Points earned by one test cell; ``repr`` is the bare number nbgrader parses."""


@dataclass
class CaseResult:
    label: str
    inputs: dict
    got: tuple | None
    ref: tuple
    failures: dict  # part name -> message


def _as_tuple(value, n: int, name: str):
    if n == 1:
        return (value,)
    if not isinstance(value, (tuple, list)) or len(value) != n:
        kind = type(value).__name__
        got = f"a {kind} of length {len(value)}" if isinstance(value, (tuple, list)) else f"a {kind}"
        raise GradingError(f"{name}: expected a tuple of {n} values (see the docstring), got {got}")
    return tuple(value)


def _call_student(ex: Exercise, fn, inputs: dict):
    """Call ``fn`` on copies of ``inputs`` with deps injected, quietly and under the tripwire."""
    glb = getattr(fn, "__globals__", {})
    deps = {name: EXERCISES[name].reference for name in ex.deps}
    saved = {name: glb[name] for name in deps if name in glb}
    args = copy.deepcopy(inputs)
    try:
        glb.update(deps)
        with integrity.quiet(), integrity.watching(allowed=deps.values()) as wire:
            try:
                out = fn(**args)
            except NotImplementedError as exc:
                raise GradingError(f"{ex.name} is not written yet ({exc or ex.task}): "
                                   f"replace the `raise NotImplementedError` line with your code") from exc
            except GradingError:
                raise
            except Exception as exc:
                raise GradingError(f"{ex.name} raised {type(exc).__name__}: {exc}\n"
                                   f"  → on the input case '{_describe(inputs)}'; the traceback above "
                                   f"shows the line") from exc
    finally:
        for name in deps:
            if name in saved:
                glb[name] = saved[name]
            else:
                glb.pop(name, None)
    if wire.hits:
        raise GradingError(
            f"{ex.name} calls labkit's reference ({', '.join(wire.hits)}) instead of computing the "
            f"result itself. That scores 0 points: write {ex.task} with numpy operations.")
    mutated = any(isinstance(v, np.ndarray) and not np.array_equal(v, args[k], equal_nan=True)
                  for k, v in inputs.items())
    return out, mutated


def _describe(inputs: dict) -> str:
    parts = []
    for k, v in inputs.items():
        if isinstance(v, np.ndarray):
            parts.append(f"{k}: {v.dtype}{list(v.shape)}")
        else:
            parts.append(f"{k}={v!r}")
    return ", ".join(parts)


def _run_cases(ex: Exercise, fn, seed: int) -> list[CaseResult]:
    rng = np.random.default_rng(seed)
    results = []
    for label, inputs in ex.cases(rng):
        with integrity.quiet():
            ref = _as_tuple(ex.reference(**copy.deepcopy(inputs)), ex.n_outputs, "reference")
        out, mutated = _call_student(ex, fn, inputs)
        if mutated:
            print(f"  note: {ex.name} changed its input in place on '{label}' — a quantizer should return new "
                  f"arrays and leave its input alone (no points lost)")
        failures = {}
        try:
            got = _as_tuple(out, ex.n_outputs, ex.name)
        except GradingError as exc:
            got = None
            failures = {p.name: str(exc) for p in ex.parts}
        if got is not None:
            for part in ex.parts:
                try:
                    with integrity.quiet():
                        part.compare(got, ref, inputs)
                except GradingError as exc:
                    failures[part.name] = f"[{label}] {exc}"
        results.append(CaseResult(label, inputs, got, ref, failures))
    return results


def _plot(ex: Exercise, results: list[CaseResult], points) -> None:
    # the largest failing case (the worked example is too small for a histogram), else the largest
    failing = [r for r in results if r.failures] or results
    case = max(failing, key=lambda r: sum(np.size(v) for v in r.inputs.values() if isinstance(v, np.ndarray)))
    diff, qerr = None, {}
    try:
        with integrity.quiet():
            if case.got is not None:
                g, r = np.asarray(case.got[0], np.float64), np.asarray(case.ref[0], np.float64)
                if g.shape == r.shape:
                    diff = g - r
            if ex.quant_error is not None:
                if case.got is not None:
                    qerr["yours"] = ex.quant_error(case.inputs, case.got)
                qerr["reference"] = ex.quant_error(case.inputs, case.ref)
    except Exception:  # a malformed answer: the text message already says why; plot what we can
        qerr = {k: v for k, v in qerr.items() if k == "reference"}
    if diff is None and not qerr:
        return
    verdict = "graded" if points is not None else "visible check"
    with integrity.quiet():
        fig = error_figure(f"{ex.task} {ex.name} — {verdict}, case '{case.label}'", diff=diff, quant_errors=qerr)
    show_figure(fig)


def check(name: str, fn, *, seed: int = 0, points: float | None = None, plot: bool = True) -> Score | None:
    """Compare the student's ``fn`` with labkit's reference for exercise ``name``.

    ``seed`` picks the input cases (visible checks use 0; hidden tests other seeds). ``points``:
    the test cell's points — returns a ``Score`` (partial credit) — or ``None`` for a visible check.
    Raises ``GradingError`` when nothing is right. Under ``NBGRADER_EXECUTION`` the plot is still
    drawn (it is what the feedback page shows); pass ``plot=False`` to skip it.
    """
    if name not in EXERCISES:
        raise KeyError(f"unknown exercise {name!r}; known: {', '.join(EXERCISES)}")
    ex = EXERCISES[name]
    if ex.reference is None:
        raise RuntimeError(f"labkit.quant has no reference {name}; reinstall labkit (make setup)")
    changed = integrity.tampered()
    if changed:
        raise GradingError(
            f"this notebook replaced {', '.join(changed[:5])} — the checks cannot trust numpy or Python's "
            f"builtins any more, so {ex.task} scores 0. Remove the line that assigns to them and restart the kernel.")
    if not callable(fn):
        raise GradingError(f"{name}: expected a function, got {type(fn).__name__}")
    where = integrity.defined_outside_notebook(fn)
    if where:
        raise GradingError(
            f"{name} comes from {where}, not from this notebook: the grader grades the code written in the "
            f"notebook's answer cell. Paste your function into that cell (imports of your own files are not graded).")
    results = _run_cases(ex, fn, seed)
    if points is not None and autograding():
        # the answer record: the grader's process re-checks these outputs outside the kernel (verify.py)
        from . import records as verify
        verify.show_record(verify.answer_record(name, seed, points, [r.got for r in results]))
    if plot:
        _plot(ex, results, points)
    failed = {}
    for r in results:
        for part, msg in r.failures.items():
            failed.setdefault(part, msg)
    total = sum(p.weight for p in ex.parts)
    earned = sum(p.weight for p in ex.parts if p.name not in failed)
    n = len(results)
    if earned == 0:
        raise GradingError(f"{ex.task} ({name}) is not right yet:\n" + "\n".join(f"- {m}" for m in failed.values()))
    for p in ex.parts:
        mark = "✓" if p.name not in failed else "✗"
        line = f"{mark} {name}: {p.name} matches the reference on {n} inputs" if p.name not in failed \
            else f"{mark} {name}: {p.name} — {failed[p.name]}"
        print(line)
    if ex.deps and earned:
        print(f"  ({name} was checked with labkit's {', '.join(ex.deps)}, so a mistake there does not count twice)")
    if points is None:
        return None
    return Score(round(points * earned / total, 4))


def autograding() -> bool:
    """True inside ``nbgrader autograde`` (it sets NBGRADER_EXECUTION)."""
    return bool(os.environ.get(AUTOGRADE))
