"""Throughput arithmetic: from measured seconds to tokens per second and a speedup.

Two phases of LLM inference are timed separately because they stress different resources:

* **prefill** — one forward pass over the whole prompt (``batch × prompt_len`` tokens) that ends with
  the logits of the next token. Throughput = ``batch · prompt_len / seconds``.
* **decode** — after the prompt is in the KV cache, ``gen_len`` forward passes of one token per
  sequence, each producing the next token (greedy, fixed length, no early stop). Throughput =
  ``batch · gen_len / seconds``; the prefill that filled the cache is not in ``seconds``.

Worked number: batch 1, prompt 128, a prefill of 0.25 s → 512 tok/s; 32 decode steps in 0.8 s →
40 tok/s. The quantized model's 32 steps in 0.4 s → 80 tok/s → speedup 2.0x.

How a speedup is summarised. The benchmark times the baseline and the quantized model back to back
in each repeat (the order alternates: B Q, Q B, B Q, …), so both runs of a pair see the same load
on a shared machine. ``speedup`` is the **median over repeats of the paired ratio**
``baseline_seconds / quantized_seconds``; ``tokens_per_s`` and ``baseline_tokens_per_s`` are the
medians of each side's throughput. On a quiet machine ``speedup ≈ tokens_per_s /
baseline_tokens_per_s``; under load the paired median is the more honest number, because a burst
of someone else's work slows both halves of a pair instead of only one side.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Literal, Sequence

Phase = Literal["prefill", "decode"]
PHASES: tuple[str, ...] = ("prefill", "decode")


def tokens_processed(phase: str, batch: int, prompt_len: int, gen_len: int) -> int:
    """Tokens one timed run of ``phase`` handles: ``batch·prompt_len`` (prefill), ``batch·gen_len`` (decode)."""
    for name, value in (("batch", batch), ("prompt_len", prompt_len), ("gen_len", gen_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if phase == "prefill":
        return batch * prompt_len
    if phase == "decode":
        return batch * gen_len
    raise ValueError(f"unknown phase {phase!r}; known phases: {', '.join(PHASES)}")


def tokens_per_second(phase: str, batch: int, prompt_len: int, gen_len: int, seconds: float) -> float:
    """Throughput of one timed run: tokens processed / wall-clock seconds."""
    if not seconds > 0:
        raise ValueError(f"seconds must be a positive duration, got {seconds!r}")
    return tokens_processed(phase, batch, prompt_len, gen_len) / seconds


@dataclass(frozen=True)
class Throughput:
    """Summary of paired timings. Seconds are per repeat, in the order they were measured."""

    phase: str
    batch: int
    prompt_len: int
    gen_len: int
    tokens: int
    tokens_per_s: float
    baseline_tokens_per_s: float
    speedup: float
    seconds: tuple[float, ...]
    baseline_seconds: tuple[float, ...]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["seconds"] = list(self.seconds)
        d["baseline_seconds"] = list(self.baseline_seconds)
        return d


def summarize(
    phase: str,
    batch: int,
    prompt_len: int,
    gen_len: int,
    seconds: Sequence[float],
    baseline_seconds: Sequence[float],
) -> Throughput:
    """Medians of both sides' throughput and the median paired speedup (see the module docstring).

    ``seconds[i]`` and ``baseline_seconds[i]`` must come from the same repeat ``i``.
    """
    if len(seconds) != len(baseline_seconds) or not seconds:
        raise ValueError(
            f"need the same non-zero number of quantized and baseline timings (one pair per repeat), "
            f"got {len(seconds)} and {len(baseline_seconds)}"
        )
    tps = [tokens_per_second(phase, batch, prompt_len, gen_len, s) for s in seconds]
    base = [tokens_per_second(phase, batch, prompt_len, gen_len, s) for s in baseline_seconds]
    ratios = [b / q for q, b in zip(seconds, baseline_seconds)]
    return Throughput(
        phase=phase,
        batch=batch,
        prompt_len=prompt_len,
        gen_len=gen_len,
        tokens=tokens_processed(phase, batch, prompt_len, gen_len),
        tokens_per_s=statistics.median(tps),
        baseline_tokens_per_s=statistics.median(base),
        speedup=statistics.median(ratios),
        seconds=tuple(float(s) for s in seconds),
        baseline_seconds=tuple(float(s) for s in baseline_seconds),
    )


def paired_seconds(run_baseline: Callable[[], float], run_candidate: Callable[[], float], repeats: int,
                   warmup: int = 1) -> tuple[list[float], list[float]]:
    """The one paired-timing loop of labkit.bench: ``warmup`` untimed calls of each side, then
    ``repeats`` pairs in alternating order (B C, C B, B C, ...). Each callable runs once and returns
    the seconds of the part it times (a decode run excludes its prefill). Returns
    ``(candidate_seconds, baseline_seconds)``, pair ``i`` at index ``i`` — ready for ``summarize``.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be an integer ≥ 1 and warmup ≥ 0, got repeats={repeats!r}, warmup={warmup!r}")
    for _ in range(warmup):
        run_baseline()
        run_candidate()
    base, cand = [], []
    for i in range(repeats):
        order = ((run_baseline, base), (run_candidate, cand))
        for run, sink in order if i % 2 == 0 else order[::-1]:
            sink.append(float(run()))
    return cand, base


def mean_seconds(fn: Callable[[], object], inner: int = 1) -> float:
    """Wall-clock seconds per call of ``fn``, averaged over ``inner`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner
