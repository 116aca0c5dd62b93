"""Checks for the torch fill-ins of notebook 08 (SmoothQuant on a real model).

The numpy exercises of notebooks 01–05 go through ``labkit.grading.check`` and its ``EXERCISES``
table; notebook 08 asks for two small *torch* functions, graded here against labkit's model
helpers in ``labkit.quant.smoothquant``:

* ``activation_absmax(x)`` — the calibration statistic: per-channel max|x| of activations
  ``x: (..., dim)`` → ``(dim,)`` float32 (reference ``channel_absmax``);
* ``smoothing_factors(act_absmax, weight_absmax, alpha)`` — ``s = act^α / w^(1−α)``, 1.0 where
  either maximum is 0 (reference ``smooth_factors``).

``check_torch(name, fn, seed=0, points=None)`` runs seeded cases (the notebook's worked example
first), prints one verdict line per case, and for a hidden test returns a ``Score`` — the share of
cases right times ``points``. A torch result is converted to numpy only after its type, dtype and
shape were checked, so the messages say what a torch answer got wrong.
"""

from __future__ import annotations

import torch

from ..quant import smoothquant as _sq
from .checks import Score
from .compare import GradingError, compare_floats
from .integrity import quiet

# captured at import, i.e. in the notebook's setup cell before any student code runs
_REFERENCES = {"activation_absmax": _sq.channel_absmax, "smoothing_factors": _sq.smooth_factors}


def _absmax_cases(gen: torch.Generator):
    worked = torch.tensor([[[1.0, -4.0, 0.5], [-2.0, 3.0, 0.25]]])
    x = torch.randn(2, 16, 32, generator=gen)
    x[..., 7] *= 60.0
    return [("worked example (1, 2, 3)", (worked,)), ("(2, 16, 32) with an outlier channel", (x,)),
            ("2-D (tokens, dim)", (torch.randn(40, 24, generator=gen) * 3,))]


def _factor_cases(gen: torch.Generator):
    worked = (torch.tensor([4.0, 1.0, 0.0]), torch.tensor([1.0, 0.25, 2.0]), 0.5)
    act = torch.rand(64, generator=gen) * 10
    act[[3, 9]] = 0.0
    w = torch.rand(64, generator=gen) * 0.3
    w[5] = 0.0
    return [("worked example, α = 0.5", worked), ("64 channels with zeros, α = 0.5", (act, w, 0.5)),
            ("α = 0.8", (act, w, 0.8)), ("α = 0.0", (act, w, 0.0)), ("α = 1.0", (act, w, 1.0))]


CASES = {"activation_absmax": _absmax_cases, "smoothing_factors": _factor_cases}


def _compare(name: str, got, ref: torch.Tensor) -> None:
    if not isinstance(got, torch.Tensor):
        raise GradingError(f"{name}: expected a torch tensor, got {type(got).__name__}"
                           "\n  → this notebook works in torch: use x.abs(), .amax(dim=...), torch.where")
    if got.dtype != torch.float32:
        raise GradingError(f"{name}: expected dtype torch.float32, got {got.dtype}\n  → convert with .float()")
    if tuple(got.shape) != tuple(ref.shape):
        raise GradingError(f"{name}: expected shape {tuple(ref.shape)}, got {tuple(got.shape)}"
                           "\n  → one value per channel (the last axis): reduce over every other axis")
    compare_floats(name, got.detach().cpu().numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def check_torch(name: str, fn, *, seed: int = 0, points: float | None = None) -> Score | None:
    """Grade the student's torch function ``fn`` for exercise ``name`` (see the module docstring)."""
    if name not in _REFERENCES:
        raise KeyError(f"unknown torch exercise {name!r}; known: {', '.join(_REFERENCES)}")
    if not callable(fn):
        raise GradingError(f"{name}: expected a function, got {type(fn).__name__}")
    gen = torch.Generator().manual_seed(seed)
    right, lines = 0, []
    cases = CASES[name](gen)
    for label, args in cases:
        ref = _REFERENCES[name](*args)
        try:
            with quiet():
                got = fn(*(a.clone() if isinstance(a, torch.Tensor) else a for a in args))
            _compare(name, got, ref)
            right += 1
            lines.append(f"✓ {name}: {label}")
        except GradingError as err:
            lines.append(f"✗ {label}: {err}")
        except NotImplementedError as err:
            lines.append(f"✗ {label}: not implemented yet ({err})")
        except Exception as err:  # the student's code raised: say what and where to look
            lines.append(f"✗ {label}: your function raised {type(err).__name__}: {err}")
    print("\n".join(lines))
    if right == 0:
        raise GradingError(f"{name} is not right on any of the {len(cases)} cases yet (see the lines above)")
    return None if points is None else Score(round(points * right / len(cases), 4))
