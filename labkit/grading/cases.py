"""The case loop shared by the torch-exercise checks (``torch_checks``, ``bench_checks``).

A check runs the student's function on a handful of seeded cases, prints one ✓/✗ line per case
that says what went wrong, and scores ``points × right / cases``. The reference is computed
outside the ``try``: an error there is the grader's, never reported as the student's.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .checks import Score
from .compare import GradingError
from .integrity import freeze_module


def run_cases(name: str, cases: Iterable[tuple[str, tuple]], reference: Callable[..., Any],
              grade_case: Callable[[tuple, Any], None], points: float | None) -> Score | None:
    """Grade every ``(label, args)`` case with ``grade_case(args, reference(*args))``.

    ``grade_case`` raises ``GradingError`` for a wrong answer; any other exception from the
    student's code is reported by type and message. Raises when no case is right, so a visible
    check fails loudly; returns a partial-credit ``Score`` when ``points`` is given.
    """
    cases = list(cases)
    right, lines = 0, []
    for label, args in cases:
        ref = reference(*args)
        try:
            grade_case(args, ref)
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


freeze_module(__name__)
