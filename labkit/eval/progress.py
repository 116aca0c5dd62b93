"""Progress bars for long evaluations: tqdm on stderr, silent when asked or under nbgrader autograde.

stdout is reserved for results (``labkit eval --json`` prints exactly one JSON object there), and any
stderr output inside an nbgrader test cell scores it 0, so bars are off when the environment variable
``NBGRADER_EXECUTION`` is set or ``LABKIT_PROGRESS=0``.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    return os.environ.get("LABKIT_PROGRESS", "1") != "0" and not os.environ.get("NBGRADER_EXECUTION")


def progress(items: Iterable[T], desc: str = "", total: int | None = None) -> Iterable[T]:
    """Wrap ``items`` in a tqdm bar on stderr (or return them unchanged when bars are off)."""
    if not progress_enabled():
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc or None, total=total, file=sys.stderr, leave=False, dynamic_ncols=True)
