"""Granularity: which elements share one scale.

Every granularity reduces over the **last axis** of the tensor it is given — the input (K)
dimension of a weight ``w: (out, in)`` and the hidden dimension of activations
``x: (..., tokens, hidden)``:

* ``PerTensor()``  — one scale for the whole tensor; scale shape ``()``.
* ``PerRow()``     — one scale per output channel of a weight; ``w: (out, in)`` → scale ``(out,)``.
* ``PerToken()``   — one scale per token of an activation; ``x: (..., hidden)`` → scale ``x.shape[:-1]``.
  The same reduction as ``PerRow`` (torchao uses one ``PerRow`` for both); the name says which
  tensor it is meant for.
* ``PerGroup(g)``  — groups of ``g`` consecutive elements along K; ``w: (out, in)`` → scale
  ``(out, ceil(in / g))``.

Rule for a group size that does not divide K: **the last group is shorter** (K = 576, g = 128 →
four groups of 128 and one of 64). It is implemented by padding K with zeros up to a multiple of
``g``; zeros never raise a group's absmax and never move a range that already contains zero, so
the short group's scale comes from its own elements only. DeepSeek-V3 style 128-wide groups
along K are what a GEMM kernel can apply per K-tile, which is why groups run along K and not
along the output dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class PerTensor:
    def __repr__(self) -> str:
        return "PerTensor()"


@dataclass(frozen=True)
class PerRow:
    def __repr__(self) -> str:
        return "PerRow()"


@dataclass(frozen=True)
class PerToken:
    def __repr__(self) -> str:
        return "PerToken()"


@dataclass(frozen=True)
class PerGroup:
    group_size: int

    def __post_init__(self) -> None:
        g = self.group_size
        if isinstance(g, bool) or not isinstance(g, int):
            raise TypeError(f"PerGroup(group_size) takes an int, got {type(g).__name__} {g!r}")
        if g <= 0:
            raise ValueError(f"PerGroup(group_size) must be positive, got {g}")

    def __repr__(self) -> str:
        return f"PerGroup({self.group_size})"


Granularity = Union[PerTensor, PerRow, PerToken, PerGroup]
GRANULARITIES = (PerTensor, PerRow, PerToken, PerGroup)

MIN_NDIM = {PerTensor: 0, PerRow: 2, PerToken: 1, PerGroup: 1}


def check_granularity(granularity: object) -> Granularity:
    if not isinstance(granularity, GRANULARITIES):
        raise TypeError(
            "granularity must be PerTensor(), PerRow(), PerToken() or PerGroup(g) from "
            f"labkit.quant, got {granularity!r}"
        )
    return granularity  # type: ignore[return-value]


def scale_shape(shape: tuple[int, ...], granularity: Granularity) -> tuple[int, ...]:
    """Shape of the scale that ``granularity`` gives a tensor of ``shape``."""
    if isinstance(granularity, PerTensor):
        return ()
    if isinstance(granularity, (PerRow, PerToken)):
        return tuple(shape[:-1])
    k = shape[-1]
    return tuple(shape[:-1]) + (-(-k // granularity.group_size),)


def parse_granularity(text: str) -> Granularity:
    """``"tensor"``, ``"row"``, ``"token"``, ``"group128"`` → a granularity object."""
    t = text.lower().strip()
    table = {"tensor": PerTensor(), "row": PerRow(), "channel": PerRow(), "token": PerToken()}
    if t in table:
        return table[t]
    if t.startswith("group") and t[5:].isdigit():
        return PerGroup(int(t[5:]))
    raise ValueError(f"unknown granularity {text!r}; use tensor, row, token or groupN (e.g. group128)")
