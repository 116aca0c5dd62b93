"""What keeps a check honest: a snapshot of numpy taken before any student cell ran, a tripwire
that notices calls into labkit's references, and a muffle for stderr.

1. **Snapshot.** ``labkit.grading`` is imported by each notebook's locked setup cell, before the
   student's first cell. At that moment we record every public attribute of ``numpy``,
   ``numpy.testing``, ``numpy.linalg`` and ``builtins``. A check first compares the live modules
   with the snapshot; ``np.allclose = lambda *a, **k: True`` (or a patched ``np.round``, which
   would corrupt the reference too) is reported and scores 0. The comparisons themselves use
   ufuncs and ndarray methods captured here (C objects that cannot be monkeypatched).
2. **Tripwire.** While a student's function runs, ``sys.setprofile`` watches for calls that enter
   ``labkit/quant`` straight from non-labkit code. A fill-in that merely calls
   ``labkit.quant.absmax_quantize`` (however it was imported or renamed) is caught, because we
   look at the code object, not at the name. References the check injects on purpose (e.g. the
   reference ``quantize_column`` inside ``gptq_simplified``) are whitelisted; a reference reached
   only through such a helper is whitelisted for labkit's callers alone (``via_labkit``), so the
   student calling it directly is still caught.
3. **Quiet.** nbgrader scores a test cell 0 if anything reaches stderr, so the student's function
   runs with warnings ignored and ``sys.stderr`` redirected (e.g. a stray ``print(...,
   file=sys.stderr)`` or a RuntimeWarning from a division by zero must not cost a right answer).

4. **Read-only grader.** The modules of ``labkit.grading`` refuse attribute assignment, the hidden
   tests call ``labkit.grading.checks.check`` by its module (a ``check`` redefined in the notebook
   is not used) and the exercise table is a read-only mapping of frozen dataclasses holding the
   references captured at import (patching ``labkit.quant.absmax_quantize`` later changes nothing).

Limits (stated, not hidden): this is in-process grading. A determined student can still reach
the grader's objects (``module.__dict__``, ``object.__setattr__``, the snapshot) and nbgrader does
not sandbox the kernel; these defences stop casual and accidental patching, not an attacker.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np
import numpy.linalg
import numpy.testing

import labkit.quant as _quant

# -- 1. snapshot --------------------------------------------------------------------------------

_WATCHED = {"numpy": np, "numpy.testing": numpy.testing, "numpy.linalg": numpy.linalg, "builtins": builtins}


def _snapshot(module) -> dict[str, object]:
    snap = {}
    for name in dir(module):
        if name.startswith("_"):
            continue
        try:
            snap[name] = getattr(module, name)
        except Exception:  # lazy or expired attributes numpy refuses to hand out
            continue
    return snap


try:  # torch's comparisons and the Tensor methods a torch check uses
    import torch as _torch

    _WATCHED["torch"] = _torch
    _WATCHED["torch.Tensor"] = _torch.Tensor
    _WATCHED["torch.testing"] = _torch.testing
except ImportError:  # pragma: no cover
    _torch = None

_SNAPSHOT = {label: _snapshot(mod) for label, mod in _WATCHED.items() if not label.startswith("torch")}
if _torch is not None:  # the names a check or a comparison leans on (torch has thousands of lazy attributes)
    _SNAPSHOT["torch"] = {n: getattr(_torch, n) for n in ("allclose", "isclose", "equal", "round", "abs", "where",
                                                           "isnan", "isfinite", "tensor", "from_numpy", "amax")}
    _SNAPSHOT["torch.Tensor"] = {n: getattr(_torch.Tensor, n) for n in (
        "allclose", "isclose", "equal", "numpy", "float", "double", "abs", "clone", "detach", "cpu", "to", "item",
        "numel", "__sub__", "__le__", "__eq__", "__gt__", "any", "all", "sum", "max", "view")}
    _SNAPSHOT["torch.testing"] = {"assert_close": _torch.testing.assert_close}
# ipykernel swaps builtins.input/print-like hooks per execution: watch only the builtins a check uses.
_BUILTINS_USED = ("abs", "all", "any", "bool", "callable", "float", "getattr", "int", "isinstance", "len",
                  "list", "max", "min", "range", "round", "sum", "tuple", "type", "zip", "AssertionError")
_SNAPSHOT["builtins"] = {name: getattr(builtins, name) for name in _BUILTINS_USED}

# The private comparison kit: ufuncs and ndarray methods are C objects, immune to patching.
ABS = np.absolute
SUB = np.subtract
ISNAN = np.isnan
ISFINITE = np.isfinite
EQUAL = np.equal
LESS_EQUAL = np.less_equal
MAXIMUM = np.maximum
ASARRAY = np.asarray
NDARRAY = np.ndarray
FLOAT64 = np.float64


def tampered() -> list[str]:
    """Names of watched functions that no longer are the objects recorded at import time."""
    changed = []
    for label, mod in _WATCHED.items():
        for name, obj in _SNAPSHOT[label].items():
            current = getattr(mod, name, obj) if isinstance(mod, type) else mod.__dict__.get(name, obj)
            if current is not obj:
                changed.append(f"{label}.{name}" if label != "builtins" else name)
    return changed


# -- read-only grading modules -------------------------------------------------------------------

class ReadOnlyModule(type(np)):
    """Module type whose attributes cannot be reassigned: ``labkit.grading.checks.check = fake``
    raises instead of silently replacing the grader (the hidden tests look ``check`` up there)."""

    def __setattr__(self, name, value):
        if name not in self.__dict__:  # new names (e.g. a submodule being imported) are harmless
            return super().__setattr__(name, value)
        raise AttributeError(
            f"{self.__name__}.{name} is read-only: the grading code cannot be replaced from a notebook")

    def __delattr__(self, name):
        raise AttributeError(f"{self.__name__}.{name} is read-only")


def freeze_module(name: str) -> None:
    """Make the already-imported module ``name`` read-only (see ``ReadOnlyModule``)."""
    sys.modules[name].__class__ = ReadOnlyModule


def defined_outside_notebook(fn) -> str | None:
    """The file ``fn`` was imported from, when it was not written in a notebook cell; else None.

    Inside a kernel, cell code compiles to file names that do not exist on disk (or that live in
    ipykernel's own temporary folder, for the debugger); a function whose code file exists was
    imported from a module, e.g. ``from my_answers import absmax_quantize``. labkit's own files
    are left to the tripwire (which says "calls labkit's reference"). Outside IPython (plain
    Python, tests) there are no cells, and this returns None.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return None
    code = getattr(fn, "__code__", None)
    if code is None or get_ipython() is None:
        return None
    path = os.path.abspath(code.co_filename)
    labkit_dir = os.path.dirname(_QUANT_DIR.rstrip(os.sep))
    if not os.path.isfile(path) or path.startswith(labkit_dir + os.sep) or os.sep + "ipykernel_" in path:
        return None
    return os.path.basename(path)


# -- 2. tripwire ---------------------------------------------------------------------------------

_QUANT_DIR = os.path.dirname(os.path.abspath(_quant.__file__)) + os.sep
_LABKIT_DIR = os.path.dirname(_QUANT_DIR.rstrip(os.sep)) + os.sep


def _in_quant(code) -> bool:
    return code.co_filename.startswith(_QUANT_DIR)


@dataclass
class Tripwire:
    """Records calls into a watched labkit package (``labkit/quant`` by default) made from code
    outside that package — the student's — and calls of the ``guarded`` functions themselves
    (references wrapped elsewhere in labkit, e.g. in ``labkit.grading.torch_checks``)."""

    allowed: frozenset = frozenset()
    hits: list[str] = field(default_factory=list)
    dirs: tuple = (_QUANT_DIR,)
    guarded: frozenset = frozenset()

    def _profile(self, frame, event, arg):
        if event != "call":
            return
        code = frame.f_code
        if code in self.guarded:
            caller = frame.f_back
            if caller is not None and not caller.f_code.co_filename.startswith(_LABKIT_DIR):
                self._hit(code)
                return
        for d in self.dirs:
            if code.co_filename.startswith(d):
                caller = frame.f_back
                if caller is None or caller.f_code.co_filename.startswith(d) or code in self.allowed:
                    return
                self._hit(code)
                return

    def _hit(self, code) -> None:
        rel = os.path.relpath(code.co_filename, os.path.dirname(_LABKIT_DIR.rstrip(os.sep)))[:-3].replace(os.sep, ".")
        name = f"{rel}.{code.co_name}"
        if name not in self.hits:
            self.hits.append(name)


@dataclass(frozen=True)
class ViaLabkit:
    """An ``allowed`` entry that only labkit's own code may call: the reference behind a helper a
    check hands to the fill-in (e.g. ``labkit.quant.gptq_full.gptq_quantize_hessian`` behind 9.4's
    ``layer_gptq``). Called through the helper it is allowed; called from the student's code it is
    a hit, as any reference is. Write it ``via_labkit(fn)``."""

    fn: object


def via_labkit(fn) -> ViaLabkit:
    return ViaLabkit(fn)


def _code(f):
    return getattr(f, "__code__", f)


@contextlib.contextmanager
def watching(allowed=(), packages=("quant",), guarded=()):
    """Run a block with the tripwire armed; yields the ``Tripwire`` (read ``.hits`` afterwards).

    ``allowed``: functions (references) the block may call from student code; an entry wrapped in
    ``via_labkit`` may be called only from labkit's code (it is guarded as well as allowed).
    ``packages``: the labkit sub-packages watched (``"quant"``, ``"bench"``, ``"nn"``…).
    ``guarded``: functions watched wherever they live.
    """
    inner = [a.fn for a in allowed if isinstance(a, ViaLabkit)]
    wire = Tripwire(frozenset(_code(a.fn if isinstance(a, ViaLabkit) else a) for a in allowed), [],
                    tuple(_LABKIT_DIR + p + os.sep for p in packages),
                    frozenset(_code(f) for f in tuple(guarded) + tuple(inner)))
    previous = sys.getprofile()
    hook = wire._profile  # one bound-method object, so the identity test below means something
    sys.setprofile(hook)
    try:
        yield wire
    finally:
        if sys.getprofile() is not hook:
            wire.hits.append("sys.setprofile (the function switched the grader's call tracing off)")
        sys.setprofile(previous)


def autograding() -> bool:
    """True inside ``nbgrader autograde`` (it sets NBGRADER_EXECUTION)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


# -- 3. quiet ------------------------------------------------------------------------------------

@contextlib.contextmanager
def quiet():
    """Ignore warnings and swallow Python-level stderr for the duration of the block."""
    sink = io.StringIO()
    with warnings.catch_warnings(), np.errstate(all="ignore"), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        yield sink
