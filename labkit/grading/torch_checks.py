"""Checks for the torch fill-ins of notebook 06 (weight-only). Notebook 08's checks (calibration,
smoothing) live in ``labkit.grading.smoothquant_checks``.

Notebook 06 asks for one, graded twice (once per format, so a wrong FP8 cast costs only the FP8
points): ``fake_quant_per_group(w, group_size, fmt)`` — quantize-dequantize ``w: (out, K)`` with one
absmax scale per group of ``group_size`` along K (the last group shorter when it does not divide K,
an all-zero group kept at 0), returned in ``w``'s dtype; exercises ``fake_quant_per_group_int8`` and
``fake_quant_per_group_fp8`` (reference ``labkit.quant.fake_quantize(w, fmt, PerGroup(g))``). Values
may differ from it by one grid step on ≤ 2 % of the elements (rounding ties: ``x·(qmax/amax)`` and
``x/(amax/qmax)`` round differently now and then); an answer that calls ``labkit.quant`` or changes
``w`` in place scores 0 on that case (the tripwire of ``integrity``).

``check_torch(name, fn, seed=0, points=None)`` runs seeded cases (the notebook's worked example
first), prints one verdict line per case, and for a hidden test returns a ``Score`` — the share of
cases right times ``points``. A torch result is converted to numpy only after its type, dtype and
shape were checked, so the messages say what a torch answer got wrong.
"""

from __future__ import annotations

import torch

from ..quant.granularity import PerGroup
from ..quant.primitives import choose_qparams as _choose_qparams
from ..quant.primitives import fake_quantize as _fake_quantize
from .cases import CaseCheck, Score, grade, register
from .compare import GradingError, compare_floats


def _per_group_reference(w: torch.Tensor, group_size: int, fmt: str) -> torch.Tensor:
    return _fake_quantize(w, fmt, PerGroup(group_size))


# captured at import, i.e. in the notebook's setup cell before any student code runs
_REFERENCES = {"fake_quant_per_group_int8": _per_group_reference, "fake_quant_per_group_fp8": _per_group_reference}


def _group_cases(fmt: str):
    def cases(gen: torch.Generator):
        # the notebook's worked example: K = 6, g = 4 → groups of 4 and 2; row 1 starts with a zero group
        worked = torch.tensor([[1.27, -0.5, 0.004, 0.3, 0.02, -0.013], [0.0, 0.0, 0.0, 0.0, 3.0, -1.0]])
        w = torch.randn(8, 256, generator=gen) * 0.05
        w[torch.arange(8), torch.randint(0, 256, (8,), generator=gen)] *= 40.0   # one outlier per row
        ragged = torch.randn(16, 200, generator=gen) * 0.02
        ragged[3, 64:128] = 0.0                                                   # an all-zero group
        return [("worked example (2, 6), g = 4", (worked, 4, fmt)),
                ("(8, 256) with an outlier per row, g = 64", (w, 64, fmt)),
                ("(16, 200), g = 64: last group of 8, one all-zero group", (ragged, 64, fmt)),
                ("(4, 48), g = 128 > K: one group per row", (torch.randn(4, 48, generator=gen), 128, fmt)),
                ("(8, 128) bfloat16, g = 32", ((torch.randn(8, 128, generator=gen) * 0.1).bfloat16(), 32, fmt))]
    return cases


CASES = {"fake_quant_per_group_int8": _group_cases("int8"), "fake_quant_per_group_fp8": _group_cases("fp8_e4m3")}


def _grid_step(w: torch.Tensor, group_size: int, fmt: str, ref: torch.Tensor) -> torch.Tensor:
    """Per-element upper bound of one grid step around ``ref``, plus the rounding of w's dtype."""
    scale = _choose_qparams(w, fmt, PerGroup(group_size)).scale
    s = scale.repeat_interleave(group_size, dim=-1)[..., : w.shape[-1]]
    mag = ref.float().abs()
    if fmt.startswith("fp8"):  # e4m3: 3 mantissa bits (step ≤ |v|/8), subnormal step 2^-9 in units of the scale
        s = torch.maximum(mag * 2.0**-3, s * 2.0**-9)
    return s * 1.0001 + mag * torch.finfo(w.dtype).eps


def _compare_group(name: str, got, ref: torch.Tensor, w: torch.Tensor, group_size: int, fmt: str) -> None:
    if not isinstance(got, torch.Tensor):
        raise GradingError(f"{name}: expected a torch tensor, got {type(got).__name__}"
                           "\n  → return the dequantized weight itself, a tensor shaped like w")
    if got.dtype != w.dtype:
        raise GradingError(f"{name}: expected the input's dtype {w.dtype}, got {got.dtype}"
                           "\n  → compute in float32, then return result.to(w.dtype)")
    if tuple(got.shape) != tuple(w.shape):
        raise GradingError(f"{name}: expected the input's shape {tuple(w.shape)}, got {tuple(got.shape)}"
                           "\n  → after padding K up to a multiple of g and reshaping to (out, groups, g), "
                           "reshape back and drop the padding: [..., :K]")
    g, e = got.detach().float().cpu(), ref.float()
    err = (g - e).abs()
    bad = ~(err <= 1e-7 + 1e-5 * e.abs())          # NaN counts as bad
    if bool(bad.any()):
        one_step = err <= _grid_step(w, group_size, fmt, ref) + 1e-7
        if bool((bad & ~one_step).any()) or int(bad.sum()) > max(1, int(0.02 * e.numel())):
            compare_floats(name, g.numpy(), e.numpy(), rtol=1e-5, atol=1e-7)   # raises, saying where and how much


_TASKS = {"fake_quant_per_group_int8": "Task 6.1", "fake_quant_per_group_fp8": "Task 6.1"}


def _register(name: str) -> None:
    def compare(got, ref, args):
        _compare_group(name, got, ref, *args)

    # the engine (labkit.grading.cases) calls the student's function on clones, with the tripwire on
    # labkit/quant, fails a case that changes its input in place, and records the answers under autograde
    register(CaseCheck(name=name, task=_TASKS[name], reference=_REFERENCES[name],
                       cases=lambda seed: CASES[name](torch.Generator().manual_seed(seed)), compare=compare,
                       watch=("quant",), language="torch", mutation_fails=True))


for _name in _REFERENCES:
    _register(_name)


def check_torch(name: str, fn, *, seed: int = 0, points: float | None = None) -> Score | None:
    """Grade the student's torch function ``fn`` for exercise ``name`` (see the module docstring)."""
    if name not in _REFERENCES:
        raise KeyError(f"unknown torch exercise {name!r}; known: {', '.join(_REFERENCES)}")
    return grade(name, fn, seed=seed, points=points, plot=False)
