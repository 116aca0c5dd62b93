"""Compare a student's result with the reference's, in the order a person would debug it:
type → dtype → shape → NaN → values. Each failure is a ``GradingError`` (an AssertionError) whose
message says what was expected, what came and what to look at.

Tolerances follow the format:

* integer codes (int8, uint8) must be **exact**; the only slack is for rounding ties — when
  ``x / scale`` sits a hair from ``k + 0.5`` a float32 and a float64 computation may round to
  different neighbours, so up to ``tie_frac`` (0.2 %) of the codes may differ by exactly 1;
* floats compare with ``|got − expected| ≤ atol + rtol·|expected|`` (numpy's ``isclose`` rule,
  computed here with ufuncs captured at import so a patched ``np.isclose`` changes nothing);
  a quantized float result may also differ by one grid step on up to ``tie_frac`` of elements.

Worked example: expected int8 codes [50, -127, 0], got [50, -127, 1] on 3 elements → 1 of 3
differs (33 %, far above 0.2 %) → "codes differ at 1 of 3 positions; first at index (2,):
expected 0, got 1".
"""

from __future__ import annotations

import numpy as np

from . import integrity as _i

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]


class GradingError(AssertionError):
    """A failed check; the message is written for the student."""


def _fail(name: str, message: str, hint: str = "") -> None:
    text = f"{name}: {message}"
    if hint:
        text += f"\n  → {hint}"
    raise GradingError(text)


def check_array(name: str, got, *, shape=None, dtype=None, kind: str | None = None) -> None:
    """``got`` must be a numpy array (not a torch tensor, list or scalar), with ``shape`` and
    either the exact ``dtype`` or the dtype ``kind`` ('f' float, 'i' signed int, 'u' unsigned)."""
    if torch is not None and isinstance(got, torch.Tensor):
        _fail(name, f"expected a numpy array, got a torch tensor of dtype {got.dtype}",
              "this exercise is in numpy: use np.* functions, or convert with .numpy()")
    if not isinstance(got, _i.NDARRAY):
        _fail(name, f"expected a numpy array, got {type(got).__name__} {_short(got)}",
              "return the array itself (np.ndarray), not a list, tuple or Python number")
    if dtype is not None and got.dtype != dtype:
        hint = {
            "int8": "cast the rounded codes with .astype(np.int8) after clipping to [-127, 127]",
            "uint8": "cast the rounded codes with .astype(np.uint8) after clipping to [0, 255]",
        }.get(str(dtype), f"convert with .astype(np.{dtype})")
        _fail(name, f"expected dtype {dtype}, got {got.dtype}", hint)
    if kind is not None and got.dtype.kind != kind:
        label = {"f": "a floating-point dtype", "i": "a signed integer dtype", "u": "an unsigned integer dtype"}[kind]
        _fail(name, f"expected {label}, got {got.dtype}",
              "integer codes must be multiplied by a float scale to get real values back" if kind == "f" else "")
    if shape is not None and tuple(got.shape) != tuple(shape):
        _fail(name, f"expected shape {tuple(shape)}, got {tuple(got.shape)}",
              "check which axis you reduced over (axis=1 gives one value per row) and keepdims")


def check_scalar(name: str, got, expected, *, rtol: float = 1e-5, atol: float = 0.0, integer: bool = False) -> None:
    """A number (Python, numpy scalar or 0-d array) close to ``expected``; exact for ``integer``."""
    if torch is not None and isinstance(got, torch.Tensor):
        _fail(name, f"expected a number, got a torch tensor {_short(got)}", "return a numpy or Python number")
    arr = _i.ASARRAY(got) if not isinstance(got, (str, bytes)) else None
    if arr is None or arr.ndim != 0 or arr.dtype.kind not in "iuf" or arr.dtype == bool:
        _fail(name, f"expected a single number, got {type(got).__name__} {_short(got)}",
              "a per-tensor scale is one number; did you forget to reduce (np.max) over all elements?")
    if integer:
        if arr.dtype.kind not in "iu":
            _fail(name, f"expected an integer, got {type(got).__name__} {got!r}",
                  "a zero point is an integer: wrap the rounded value in int(...)")
        if int(arr) != int(expected):
            _fail(name, f"expected {int(expected)}, got {int(arr)}",
                  "zero_point = round(-min / scale): it is the code that real 0.0 maps to")
        return
    value = float(arr)
    if not _i.ISFINITE(value):
        _fail(name, f"expected a finite number ≈ {float(expected):.6g}, got {value}",
              "a division by zero? check what happens when the input is constant or all zeros")
    if abs(value - float(expected)) > atol + rtol * abs(float(expected)):
        ratio = value / float(expected) if float(expected) else float("nan")
        hint = ""
        if ratio == ratio:  # not NaN
            for factor, why in ((127, "127 (qmax)"), (255, "255 (number of uint8 steps)"), (2, "2")):
                if abs(ratio - factor) < 1e-3 * factor or abs(ratio * factor - 1) < 1e-3:
                    hint = f"off by a factor of {why}: check where you divide or multiply by it"
            for wrong, right, why in ((128, 127, "int8's largest code is 127, not 128 = 2⁷"),
                                      (256, 255, "uint8 has 255 steps between 0 and 255, not 256 = 2⁸"),
                                      (8, 7, "int4's largest code is 7, not 8")):
                if abs(ratio - right / wrong) < 1e-4 or abs(ratio - wrong / right) < 1e-4:
                    hint = f"ratio {right}/{wrong}: divide by {right}, not {wrong} — {why}"
        _fail(name, f"expected ≈ {float(expected):.6g}, got {value:.6g} (ratio {ratio:.4g})",
              hint or "recompute it by hand on the small example in the markdown above")


def compare_codes(name: str, got, expected, *, tie_frac: float = 0.002) -> None:
    """Integer codes: exact, except ≤ ``tie_frac`` of positions off by exactly one (rounding ties)."""
    check_array(name, got, shape=expected.shape, dtype=expected.dtype)
    diff = _i.SUB(got.astype(_i.FLOAT64), expected.astype(_i.FLOAT64))
    bad = _i.ABS(diff) > 0
    n_bad = int(bad.sum())
    if n_bad == 0:
        return
    big = int((_i.ABS(diff) > 1).sum())
    if big == 0 and n_bad <= max(1, int(tie_frac * diff.size)):
        return
    idx = tuple(int(i) for i in _first(bad))
    hint = "compare np.round (to nearest, halves to even) with what you used; clip before casting"
    if big and int((_i.ABS(diff) % 256 == 0).sum()) >= n_bad // 2:
        hint = "differences of 256 mean an integer wrapped around: clip before .astype(...)"
    elif n_bad > diff.size // 3 and big == 0:
        hint = "many codes off by one: truncation (astype without np.round) or floor instead of round?"
    _fail(name, f"codes differ at {n_bad} of {diff.size} positions; first at index {idx}: "
          f"expected {int(expected[idx])}, got {int(got[idx])}", hint)


def compare_floats(name: str, got, expected, *, rtol: float = 1e-5, atol: float = 1e-7,
                   step=None, tie_frac: float = 0.002) -> None:
    """Float arrays: dtype kind 'f', same shape, no NaN, values within tolerance. ``step`` (the
    quantization step, broadcastable) lets ≤ ``tie_frac`` of elements differ by one grid step."""
    check_array(name, got, shape=expected.shape, kind="f")
    g = got.astype(_i.FLOAT64)
    e = expected.astype(_i.FLOAT64)
    nan = _i.ISNAN(g)
    if bool(nan.any()):
        _fail(name, f"{int(nan.sum())} of {g.size} values are NaN (first at index {tuple(int(i) for i in _first(nan))})",
              "NaN comes from 0/0 or from a wrapped-around integer: check divisions and the dtype of the codes")
    err = _i.ABS(_i.SUB(g, e))
    bad = err > atol + rtol * _i.ABS(e)
    if step is not None and bool(bad.any()):
        s = np.broadcast_to(np.asarray(step, dtype=np.float64), e.shape)
        off_one = np.abs(err - s) <= 1e-4 * s + atol
        if not bool((bad & ~off_one).any()) and int(bad.sum()) <= max(1, int(tie_frac * g.size)):
            return
    if not bool(bad.any()):
        return
    idx = tuple(int(i) for i in _first(bad))
    _fail(name, f"{int(bad.sum())} of {g.size} values differ (largest difference {float(err.max()):.3g}); "
          f"first at index {idx}: expected {e[idx]:.6g}, got {g[idx]:.6g}",
          "look at the histogram of (yours − reference) shown with this check; a constant ratio means a wrong scale, "
          "a spread of one step means rounding, a few large values mean clipping")


def _first(mask):
    return [int(a[0]) for a in mask.nonzero()]


def _short(obj) -> str:
    text = repr(obj)
    return text if len(text) < 60 else text[:57] + "..."
