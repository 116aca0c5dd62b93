"""Prefill and decode throughput of a quantized model against its own unquantized baseline.

Protocol (what ``labkit bench`` runs; the arithmetic is in ``timing.py``, the loops in
``generation.py``, the reasons in ``roofline.py``):

1. Load the model once (float32 on CPU); the baseline is that model, the quantized model a
   ``quantize_model`` copy of it (lm_head included by default — in SmolLM2 it is the tied
   49152×576 embedding, a fifth of the bytes one decode step reads).
2. Make a seeded random prompt ``(batch, prompt_len)``: the content of the prompt does not change
   the work of a fixed-length greedy decode.
3. Warm up both models (``warmup`` untimed runs each: first-call allocations, kernel packing, page
   faults), then ``repeats`` timed runs of each, *interleaved* — B Q, Q B, B Q, … — so that a
   burst of load from another process lands on both sides of a pair.
4. Report the medians and the median paired speedup, plus what a reader needs to trust the
   number: weight bytes of both models, torch threads, the 1-minute load average before and after.

The machine of this lab has 2 cores shared by other users: expect ±20% run-to-run noise in
absolute tokens/s under load; the paired speedup moves much less. Set ``--threads 1`` when the
load average is above the number of cores: torch's OpenMP threads (prefill, the lean runner) that keep
losing their core to other processes wait for each other at every barrier, and a 2-thread run can
become slower than a 1-thread one. The native decode step has its own pool whose caller never waits
for a thread that has not started (``native_decode.c``): on a busy machine its second thread only
stops helping.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .generation import greedy_decode, prefill
from .timing import Throughput, paired_seconds, summarize


def matmul_weight_bytes(model: nn.Module) -> int:
    """Bytes the linears (lm_head included) store for their weights: what one decode step reads.

    ``nn.Linear``: the float weight; a quantized module with ``weight_bytes()``: codes + scales.
    """
    total = 0
    for module in model.modules():
        if hasattr(module, "weight_bytes") and callable(module.weight_bytes):
            total += int(module.weight_bytes())
        elif isinstance(module, nn.Linear):
            total += module.weight.numel() * module.weight.element_size()
    return total


def model_bytes(model: nn.Module) -> int:
    """Bytes of all parameters and buffers, each storage counted once (tied weights are shared)."""
    seen: set[int] = set()
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def random_prompt(vocab_size: int, batch: int, prompt_len: int, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    """Seeded token ids ``(batch, prompt_len)`` drawn uniformly from ``[0, vocab_size)``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, prompt_len), generator=gen).to(device)


def _one_run(model: Any, phase: str, ids: torch.Tensor, gen_len: int, runner: str) -> float:
    if phase == "prefill":
        return prefill(model, ids, runner=runner).seconds
    return greedy_decode(model, ids, gen_len, runner=runner).seconds


def time_pair(
    baseline: Any,
    quantized: Any,
    phase: str,
    ids: torch.Tensor,
    gen_len: int,
    repeats: int,
    warmup: int,
    runner: str = "lean",
) -> Throughput:
    """Interleaved timings of both models (see the module docstring); returns the summary."""
    quant_s, base_s = paired_seconds(lambda: _one_run(baseline, phase, ids, gen_len, runner),
                                     lambda: _one_run(quantized, phase, ids, gen_len, runner), repeats, warmup)
    batch, prompt_len = ids.shape
    return summarize(phase, batch, prompt_len, gen_len, quant_s, base_s)


@dataclass(frozen=True)
class Environment:
    """Where a measurement ran: enough to judge it."""

    device: str
    torch_threads: int
    torch_version: str
    cpu: str
    load_avg_1min: float

    @classmethod
    def capture(cls, device: str) -> "Environment":
        name = platform.processor() or platform.machine()
        if device == "cuda" and torch.cuda.is_available():
            name = torch.cuda.get_device_name()
        else:
            try:
                with open("/proc/cpuinfo") as f:
                    name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
            except OSError:
                pass
        return cls(device, torch.get_num_threads(), torch.__version__, name, os.getloadavg()[0])
