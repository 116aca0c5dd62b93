"""Speed targets of the lab, checked by ``labkit bench --check-targets`` (never by unit tests).

Ratios against the float32 baseline measured in the same run: default model, batch 1, real mode,
``--threads 1``, decode with the native runner (``labkit.bench.native``). Why these numbers
(``roofline.py``): decode is memory bound, so 8-bit weights read 4x fewer bytes than float32 and
may be up to 4x faster. A decode loop that keeps per-token overhead small gets most of it: INT8
per-row must reach 3.0x, every INT8 scheme 2.5x (per-group reads 3 % more bytes for its scales and
applies them per group), FP8 2.0x (no FP8 arithmetic on a CPU: each code is decoded by integer
shifts, more work per byte). Prefill is compute bound: an 8-bit weight cannot make it faster by
its bytes, but the kernel must not lose more than 10 %, and INT8 must not lose at all.

Roofline targets (with ``--roofline``): the float32 baseline and INT8 per-row each decode at ≥ 50 %
of their own roofline (bytes per token / measured read bandwidth). Thread scaling (with
``--scaling-threads N``): no scheme decodes slower with N threads than with ``--threads``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """``min_speedup`` for schemes whose format starts with ``fmt_prefix`` (and, if set, one scheme)."""

    phase: str
    fmt_prefix: str
    min_speedup: float
    scheme: str | None = None
    why: str = ""


TARGETS: tuple[Target, ...] = (
    Target("decode", "int8", 3.0, "int8-row", "INT8 per-row decode reads 4x fewer bytes than fp32"),
    Target("decode", "int8", 2.5, None, "every INT8 weight-only scheme in decode"),
    Target("decode", "fp8", 2.0, None, "FP8 decode: codes decoded by integer shifts on this CPU"),
    Target("prefill", "int8", 1.0, None, "INT8 prefill must not lose to fp32"),
    Target("prefill", "", 0.9, None, "prefill is compute bound: lose at most 10 %"),
)

MIN_ROOFLINE_FRACTION = 0.5
ROOFLINE_SCHEMES = ("none", "int8-row")  # "none": the float32 baseline of every decode row


def target_for(scheme_name: str, fmt_name: str, phase: str, mode: str = "real") -> Target | None:
    """The most specific target that applies to a measurement, or ``None`` (e.g. fake mode, baseline)."""
    if mode != "real" or scheme_name == "none":
        return None
    for target in TARGETS:  # ordered from specific to general
        if target.phase != phase or not fmt_name.startswith(target.fmt_prefix):
            continue
        if target.scheme is None or target.scheme == scheme_name:
            return target
    return None
