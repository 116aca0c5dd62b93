"""Speed targets of the lab, checked by ``labkit bench --check-targets`` (never by unit tests).

Ratios against the float32 baseline measured in the same run, default model, batch 1, this CPU
(2 cores), real mode. Why these numbers (see ``roofline.py``): decode is memory bound, so 8-bit
weights may be up to 4x faster than fp32 — INT8 per-row, with the lm_head quantized and a lean
decode loop, must reach 1.9x; every INT8 scheme (per-group too, which needs one kernel call per
group) must at least not be slower; FP8 has no CPU arithmetic, so decoding its codes costs work
and 0.9x is the bar (a student measured 0.88x on a 4090). Prefill is compute bound: 8 bits cannot
win there on this CPU, but a good kernel choice must not lose more than 10%.
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
    Target("decode", "int8", 1.9, "int8-row", "INT8 per-row decode reads 4x fewer bytes than fp32"),
    Target("decode", "int8", 1.0, None, "every INT8 scheme at least as fast as fp32 in decode"),
    Target("decode", "fp8", 0.9, None, "FP8 decode: codes decoded in software on this CPU"),
    Target("prefill", "", 0.9, None, "prefill is compute bound; no 8-bit matrix units here"),
)


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
