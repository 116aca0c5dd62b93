"""The one case engine every check runs through: numpy ``check``, ``check_torch``, ``check_bench``.

A check is a ``CaseCheck`` registered here by name (``register``). Grading ``fn`` with it:

1. refuses to grade when the notebook patched numpy, torch or builtins (``integrity.tampered``):
   the comparisons could not be trusted, so the check scores 0 and says which line to remove;
2. draws the seeded cases (``spec.cases(seed)`` → ``[(label, args)]``; ``args`` a dict of keyword
   arguments or a tuple of positional ones), computes labkit's reference quietly, then calls the
   student's function on *copies* of the inputs — quietly (nothing reaches stderr), with the
   **tripwire** armed (a call from the student's code into labkit's reference packages scores 0
   on that case) and the references of other fill-ins it may call (``deps``) swapped in;
3. compares: ``parts`` mode (numpy exercises) — a part (scale, codes…) earns its weight when it is
   right on every case; ``cases`` mode (torch, bench) — each case is worth the same share;
4. under autograde, a graded check (``points`` given) displays an **answer record** — the raw
   outputs on every case (``records.py``) — that ``labkit.course.verify`` re-grades in the
   grader's process with the same ``spec`` (recomputed reference, same compare), so a patched
   comparison in the kernel cannot turn a wrong answer into points;
5. prints one verdict: ``Task 1.1 absmax_quantize: 1/3 points`` and one ✓/✗ line per part (or per
   case) — the same whether one or all fail, never a traceback; an unwritten fill-in (the stub's
   ``NotImplementedError``) prints one line, ``Task 1.1 not written yet: replace the raise line``.
   Returns a ``Score`` (nbgrader reads the cell's last value as partial credit) for a graded
   check, ``None`` for a visible one. Nothing is raised for a wrong answer: Run All goes on.

Worked example: ``grade("absmax_quantize", f, seed=7, points=3)`` with a right scale and truncated
codes prints "1/3 points", "✓ scale …", "✗ codes q … truncation …?" and returns 1.0.
"""

from __future__ import annotations

import copy
import re
import traceback
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterable

from . import integrity
from .compare import GradingError

AUTOGRADE = "NBGRADER_EXECUTION"


class Score(float):
    """Points earned by one test cell; ``repr`` is the bare number nbgrader parses."""


@dataclass(frozen=True)
class Part:
    """A scored piece of the output: ``compare(got, ref, inputs)`` raises ``GradingError``."""

    name: str
    weight: float
    compare: Callable


@dataclass(frozen=True)
class CaseCheck:
    """Everything the engine and the out-of-kernel re-check need to grade one fill-in.

    ``cases(seed)`` → ``[(label, args)]``; ``reference(*args | **args)`` → labkit's answer;
    ``parts`` (outputs as a tuple of ``n_outputs``) or ``compare(got, ref, args)`` (cases mode,
    raises ``GradingError``); ``watch``: labkit packages the tripwire guards (``"quant"``,
    ``"bench"``…; ``"grading"`` is always watched, it holds the wrapped references); ``allowed``:
    functions of those packages the fill-in may call (e.g. ``fake_quantize`` in Task 7.3);
    ``deps``: name → reference injected into the student's globals while the check runs.
    ``copy_args``: deep-copy inputs before each call (and flag in-place changes: a ``note`` for
    numpy, a failed case when ``mutation_fails``). ``plot(results, points)``: optional figure.
    """

    name: str
    task: str
    reference: Callable
    cases: Callable[[int], list]
    parts: tuple[Part, ...] = ()
    compare: Callable | None = None
    n_outputs: int = 1
    watch: tuple[str, ...] = ("quant",)
    allowed: tuple = ()
    deps: Any = field(default_factory=dict)
    language: str = "numpy"
    mutation_fails: bool = False
    plot: Callable | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class CaseResult:
    label: str
    args: Any
    got: tuple | None       # the student's outputs as a tuple, None when the call failed
    ref: tuple
    failures: dict          # part name (or the case label in cases mode) -> message


_REGISTRY: dict[str, CaseCheck] = {}
_PASSED: dict[str, tuple[Any, bool]] = {}   # name -> (fn, full marks) of the latest check in this kernel


def register(spec: CaseCheck) -> CaseCheck:
    """Add ``spec`` to the engine (at import of its module, i.e. in the setup cell). A name
    registered twice must come from the same module (a re-import), never from a notebook."""
    old = _REGISTRY.get(spec.name)
    if old is not None and getattr(old.reference, "__module__", None) != getattr(spec.reference, "__module__", None):
        raise ValueError(f"check {spec.name!r} is already registered by {old.reference.__module__}")
    _REGISTRY[spec.name] = spec
    return spec


def registry() -> MappingProxyType:
    """Every registered check, after importing every ``labkit.grading`` module that registers some
    (so the grader's process sees the same table as a notebook that imported them all)."""
    _import_all()
    return MappingProxyType(_REGISTRY)


def _import_all() -> None:
    import importlib
    import pkgutil

    import labkit.grading as pkg
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{info.name}")


def spec_for(name: str) -> CaseCheck:
    if name not in _REGISTRY:
        _import_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown check {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


# -- one case --------------------------------------------------------------------------------------

def _copy(args):
    return copy.deepcopy(args) if isinstance(args, dict) else tuple(_copy_one(a) for a in args)


def _copy_one(a):
    try:
        import torch
        if isinstance(a, torch.Tensor):
            return a.clone()
    except ImportError:  # pragma: no cover
        pass
    return copy.deepcopy(a)


def _same(a, b) -> bool:
    import numpy as np
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
    try:
        import torch
        if isinstance(a, torch.Tensor):
            return isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b) or
                                                                               (a.isnan() & b.isnan()).all())
    except ImportError:  # pragma: no cover
        pass
    return True  # numbers, strings: immutable or not ours to judge


def _call(fn, args):
    return fn(**args) if isinstance(args, dict) else fn(*args)


def as_tuple(value, n: int, name: str) -> tuple:
    """The outputs of one call as a tuple of ``n`` values (a clear error for the wrong structure)."""
    if n == 1:
        return (value,)
    if not isinstance(value, (tuple, list)) or len(value) != n:
        kind = type(value).__name__
        got = f"a {kind} of length {len(value)}" if isinstance(value, (tuple, list)) else f"a {kind}"
        raise GradingError(f"{name}: expected a tuple of {n} values (see the docstring), got {got}")
    return tuple(value)


class _NotWritten(Exception):
    """The stub's NotImplementedError, carried out of the case loop."""


def _where(exc: BaseException) -> str:
    """'line N: <code>' of the innermost frame in the student's code (a cell, not a library)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "site-packages" not in f.filename and "/labkit/" not in f.filename and "/lib/python" not in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at line {f.lineno} of your cell: {(f.line or '').strip()[:80]})"


def _run_one(spec: CaseCheck, fn, args) -> tuple[Any, list[str], bool]:
    """Call the student's ``fn`` on a copy of ``args``: (output, tripwire hits, mutated)."""
    glb = getattr(fn, "__globals__", {})
    saved = {k: glb[k] for k in spec.deps if k in glb}
    mine = _copy(args)
    try:
        glb.update(spec.deps)
        with integrity.quiet(), integrity.watching(allowed=tuple(spec.deps.values()) + tuple(spec.allowed),
                                                   packages=spec.watch, guarded=(spec.reference,)) as wire:
            try:
                out = _call(fn, mine)
            except NotImplementedError as exc:
                raise _NotWritten(str(exc)) from None
            except GradingError:
                raise
            except Exception as exc:
                raise GradingError(f"your function raised {type(exc).__name__}: {exc}{_where(exc)}") from None
    finally:
        for k in spec.deps:
            if k in saved:
                glb[k] = saved[k]
            else:
                glb.pop(k, None)
    items = args.items() if isinstance(args, dict) else enumerate(args)
    theirs = mine if isinstance(mine, dict) else dict(enumerate(mine))
    mutated = any(not _same(v, theirs[k]) for k, v in items)
    return out, list(wire.hits), mutated


def _compare_case(spec: CaseCheck, label: str, args, got: tuple, ref: tuple) -> dict:
    """Failures of one case: part name → message (parts mode) or {label: message} (cases mode)."""
    failures = {}
    if spec.parts:
        for part in spec.parts:
            try:
                with integrity.quiet():
                    part.compare(got, ref, args)
            except GradingError as exc:
                failures[part.name] = f"[{label}] {exc}"
            except Exception as exc:  # a malformed answer the compare did not foresee
                failures[part.name] = f"[{label}] {type(exc).__name__}: {exc}"
    else:
        try:
            with integrity.quiet():
                spec.compare(got[0] if spec.n_outputs == 1 else got, ref[0] if spec.n_outputs == 1 else ref, args)
        except GradingError as exc:
            failures[label] = _strip(str(exc), spec.name)
        except Exception as exc:
            failures[label] = f"{type(exc).__name__}: {exc}"
    return failures


def _strip(msg: str, name: str) -> str:
    return msg[len(name) + 2:] if msg.startswith(name + ": ") else msg


def reference_outputs(spec: CaseCheck, args) -> tuple:
    with integrity.quiet():
        return as_tuple(_call(spec.reference, _copy(args)), spec.n_outputs, "reference")


def compare_recorded(spec: CaseCheck, seed: int, outputs: list) -> tuple[float, dict]:
    """Share of the points (0..1) that recorded ``outputs`` (one tuple or None per case) earn,
    recomputed from labkit's reference; and the failures. Used by the out-of-kernel re-check."""
    cases = spec.cases(seed)
    if len(outputs) != len(cases):
        keys = [p.name for p in spec.parts] or [lbl for lbl, _ in cases]
        return 0.0, {k: f"{len(outputs)} recorded cases, {len(cases)} expected" for k in keys}
    results = []
    for (label, args), got in zip(cases, outputs):
        ref = reference_outputs(spec, args)
        if got is None or len(got) != spec.n_outputs:
            fails = {p.name: f"[{label}] no usable output" for p in spec.parts} or {label: "no usable output"}
        else:
            fails = _compare_case(spec, label, args, tuple(got), ref)
        results.append(CaseResult(label, args, got, ref, fails))
    earned, total, failed = _tally(spec, results)
    return earned / total, failed


def _tally(spec: CaseCheck, results: list[CaseResult]) -> tuple[float, float, dict]:
    failed: dict[str, str] = {}
    for r in results:
        for k, msg in r.failures.items():
            failed.setdefault(k, msg)
    if spec.parts:
        total = sum(p.weight for p in spec.parts)
        return sum(p.weight for p in spec.parts if p.name not in failed), total, failed
    return float(sum(1 for r in results if not r.failures)), float(len(results)), failed


# -- the engine ------------------------------------------------------------------------------------

def _task_of(message: str, spec: CaseCheck) -> str:
    m = re.match(r"\s*(Task \d+(?:\.\d+)*)", message or "")
    return m.group(1) if m else (spec.task or spec.name)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _verdict(spec: CaseCheck, results: list[CaseResult], points) -> tuple[float, list[str]]:
    earned, total, failed = _tally(spec, results)
    scale = (points / total) if points is not None else 1.0
    head = f"{spec.task + ' ' if spec.task else ''}{spec.name}: {_fmt(earned * scale)}/{_fmt(total * scale)} points"
    if points is None:
        head += " (visible check; the graded test runs the same comparison on other inputs)"
    lines = [head]
    if spec.parts:
        first_bad = None
        for p in spec.parts:
            if p.name not in failed:
                lines.append(f"✓ {p.name}: matches the reference on {len(results)} inputs")
                continue
            msg = failed[p.name]
            if first_bad is not None and "\n  → " in msg:  # the most likely cause first: an earlier part
                msg = msg.split("\n  → ")[0] + f"\n  → fix the {first_bad} first: this part is computed from it"
            first_bad = first_bad or p.name
            lines.append(f"✗ {p.name}: {msg}")
    else:
        for r in results:
            lines.append(f"✓ {r.label}" if not r.failures else f"✗ {r.label}: {next(iter(r.failures.values()))}")
    return earned / total, lines


def grade(name: str, fn, *, seed: int = 0, points: float | None = None, plot: bool = True) -> Score | None:
    """Grade the student's ``fn`` with the registered check ``name`` (see the module docstring)."""
    spec = spec_for(name)
    score = None if points is None else Score(0.0)
    changed = integrity.tampered()
    if changed:
        print(f"✗ {spec.task} {name}: this notebook replaced {', '.join(changed[:5])} — the checks cannot trust "
              f"them any more, so this scores 0. Remove the line that assigns to them and restart the kernel.")
        return score
    if not callable(fn):
        print(f"✗ {spec.task} {name}: expected a function, got {type(fn).__name__} — 0 points")
        return score
    where = integrity.defined_outside_notebook(fn)
    if where:
        print(f"✗ {spec.task} {name} comes from {where}, not from this notebook: the grader grades the code written "
              f"in the answer cell. Paste your function into that cell — 0 points")
        return score
    results, notes = [], []
    try:
        for label, args in spec.cases(seed):
            ref = reference_outputs(spec, args)
            got, fails = None, {}
            try:
                out, hits, mutated = _run_one(spec, fn, args)
                if hits:
                    raise GradingError(f"your function calls labkit's reference ({', '.join(hits)}) instead of "
                                       f"computing the result itself. That scores 0: write it with {spec.language} "
                                       f"operations")
                if mutated and spec.mutation_fails:
                    raise GradingError("your function changed its input in place (e.g. w.div_(...)): return a new "
                                       "tensor and leave the input alone")
                if mutated:
                    notes.append(f"  note: {name} changed its input in place on '{label}' — a quantizer should return "
                                 f"new arrays and leave its input alone (no points lost)")
                got = as_tuple(out, spec.n_outputs, name)
            except GradingError as exc:
                msg = _strip(str(exc), name)
                fails = {p.name: f"[{label}] {msg}" for p in spec.parts} or {label: msg}
            if got is not None:
                fails = _compare_case(spec, label, args, got, ref)
            results.append(CaseResult(label, args, got, ref, fails))
    except _NotWritten as exc:
        task = _task_of(str(exc), spec)
        print(f"✗ {task} not written yet: replace the raise line with your code ({name}: 0 points)")
        _PASSED[name] = (fn, False)
        return score
    if points is not None and integrity.autograding():
        from . import records
        records.show_record(records.answer_record(name, seed, points, [r.got for r in results]))
    share, lines = _verdict(spec, results, points)
    _PASSED[name] = (fn, share == 1.0)
    if plot and spec.plot is not None:
        try:
            spec.plot(results, points)
        except Exception:  # a figure must never cost points; the text verdict says it all
            pass
    print("\n".join(notes + lines))
    return None if points is None else Score(round(points * share, 4))


def passed(name: str, fn) -> bool | None:
    """Whether the latest check of ``name`` in this kernel was of ``fn`` and gave full marks (None: not checked)."""
    entry = _PASSED.get(name)
    return None if entry is None or entry[0] is not fn else entry[1]


_ANNOUNCED: set = set()


def use_or_reference(name: str, fn=None):
    """The function later cells should use for fill-in ``name``: the student's ``fn`` when its check
    passed with full marks, else labkit's reference — saying so once per fill-in.

    ``fn`` not checked yet in this kernel is checked now, silently (the visible check's inputs).
    ``fn`` may be ``None`` (e.g. ``globals().get("absmax_quantize")`` when the cell never ran).
    Worked example: ``quantize = use_or_reference("absmax_quantize", absmax_quantize)`` after a
    check that scored 1/3 prints "↪ Task 1.1 absmax_quantize is not right yet: the cells below use
    labkit's reference (labkit.quant.absmax_quantize)" and returns that reference.
    """
    import contextlib
    import io

    spec = spec_for(name)
    ok = False
    if callable(fn):
        ok = passed(name, fn)
        if ok is None:
            with contextlib.redirect_stdout(io.StringIO()):
                grade(name, fn, plot=False)
            ok = bool(passed(name, fn))
    if ok:
        return fn
    if name not in _ANNOUNCED:
        _ANNOUNCED.add(name)
        why = "not written yet" if not callable(fn) or _PASSED.get(name, (None, None))[1] is None else "not right yet"
        ref = f"{spec.reference.__module__}.{spec.reference.__name__}"
        print(f"↪ {spec.task + ' ' if spec.task else ''}{name} is {why} (see its check above): the cells below "
              f"use labkit's reference ({ref}) instead, so the rest of the notebook still works")
    return spec.reference


# -- the older call form ---------------------------------------------------------------------------

def run_cases(name: str, cases: Iterable[tuple[str, tuple]], reference: Callable[..., Any],
              grade_case: Callable[[tuple, Any], None], points: float | None) -> Score | None:
    """Grade every ``(label, args)`` with ``grade_case(args, reference(*args))`` — the older form,
    kept working: it prints the same verdict as ``grade`` but, since ``grade_case`` calls the
    student's function itself, it cannot record answers for the out-of-kernel re-check. New checks
    ``register`` a ``CaseCheck`` and call ``grade`` instead."""
    cases = list(cases)
    spec = CaseCheck(name=name, task="", reference=reference, cases=lambda seed: cases, compare=lambda *a: None)
    results = []
    for label, args in cases:
        ref = reference(*args)
        try:
            with integrity.quiet():
                grade_case(args, ref)
            fails = {}
        except GradingError as err:
            fails = {label: _strip(str(err), name)}
        except NotImplementedError as err:
            print(f"✗ {_task_of(str(err), spec)} not written yet: replace the raise line with your code ({name}: 0 points)")
            return None if points is None else Score(0.0)
        except Exception as err:
            fails = {label: f"your function raised {type(err).__name__}: {err}{_where(err)}"}
        results.append(CaseResult(label, args, None, (ref,), fails))
    share, lines = _verdict(spec, results, points)
    print("\n".join(lines))
    return None if points is None else Score(round(points * share, 4))


integrity.freeze_module(__name__)
