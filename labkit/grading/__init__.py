"""labkit.grading — the checks the hw4 notebooks' test cells call.

    from labkit.grading import check
    check("absmax_quantize", absmax_quantize)                       # visible: verdict + histogram
    import labkit.grading.checks as _grader                        # hidden tests: by module, so a
    _grader.check("absmax_quantize", absmax_quantize, seed=4101, points=3)  # notebook `check = …` is moot

Modules: ``exercises`` (one entry per fill-in: reference, seeded cases, scored parts),
``compare`` (type → dtype → shape → values, teaching messages), ``integrity`` (numpy snapshot,
reference tripwire, stderr muffle), ``checks`` (the runner). Import this package in a notebook's
locked setup cell, before any student code runs: the numpy snapshot is taken at import.
"""

from .checks import Score, autograding, check
from .compare import GradingError
from .exercises import EXERCISES, Exercise, Part
from .integrity import freeze_module, quiet, tampered

for _name in ("checks", "compare", "exercises", "integrity"):
    freeze_module(f"{__name__}.{_name}")
freeze_module(__name__)

__all__ = ["check", "Score", "autograding", "GradingError", "EXERCISES", "Exercise", "Part", "quiet", "tampered"]
