"""The graded exercises of hw4: for each fill-in, its reference, seeded inputs and how to compare.

``EXERCISES`` maps a fill-in's name to its ``Exercise`` (see ``exercise_kit``): labkit's
reference, ``cases(rng)`` starting with the notebook's worked example, scored ``parts`` and the
``deps`` injected while it runs. The tables live next to their notebooks' concepts:
``exercises_formats`` (01 absmax, 02 zero point, 03 granularity), ``exercises_gptq`` (04) and
``exercises_w8a8`` (05: SmoothQuant, W8A8, LLM.int8()). The mapping is read-only and holds the
references captured at import, so patching ``labkit.quant`` later changes nothing.
"""

from __future__ import annotations

from types import MappingProxyType

from . import exercises_formats, exercises_gptq, exercises_w8a8
from .exercise_kit import Exercise, Part

__all__ = ["EXERCISES", "Exercise", "Part"]


def _table() -> MappingProxyType:
    table = {}
    for module in (exercises_formats, exercises_gptq, exercises_w8a8):
        for ex in module.EXERCISES:
            if ex.name in table:
                raise RuntimeError(f"exercise {ex.name!r} is defined twice ({module.__name__})")
            table[ex.name] = ex
    for ex in table.values():
        missing = [d for d in ex.deps if d not in table]
        if missing:
            raise RuntimeError(f"exercise {ex.name!r} depends on unknown exercises {missing}")
    return MappingProxyType(table)


EXERCISES: MappingProxyType = _table()
