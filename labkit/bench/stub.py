"""A stand-in language model whose cost is known, to grade a timing loop deterministically.

Timing code is hard to grade on a real model: the answer depends on the machine, its load and luck.
``StubLM`` answers like a transformers causal LM (``model(input_ids=..., past_key_values=...,
use_cache=True)`` → ``.logits``, ``.past_key_values``) but does no arithmetic: each call *costs* a
known time on a ``StubMachine``'s clock. The machine's clock is virtual (``machine.clock()``), so
the cost is exact and a check runs in milliseconds; ``StubMachine(sleep=True)`` sleeps for real
instead, so labkit's own timer (``labkit.bench.throughput.time_pair(..., runner="hf")``, which reads
``time.perf_counter``) can be run on the same stub — the tests compare the two.

Cost of one call that feeds ``batch × new`` tokens::

    seconds = load(t) · (call_s + token_s · batch · new) (+ compile_s on the stub's first call)

* ``call_s``: per forward pass (kernel launches, Python) — what makes decode slower per token;
* ``token_s``: per token fed — a loop that re-feeds the whole sequence every step instead of using
  the KV cache pays it for every earlier token again;
* ``compile_s``: once per stub, on its first call (a ``torch.compile`` or a cold cache) — what a
  warm-up run absorbs;
* ``load(t) = exp(drift · t)``: the machine slows down as another job ramps up (by the same factor
  per second of work at any time) — what interleaved baseline/quantized pairs cancel and
  back-to-back blocks of one model, then the other, do not.

Worked number: ``call_s = 0.002``, ``token_s = 0.0005``, no drift. Prefill of 1 × 64 tokens: 0.002
+ 0.032 = 0.034 s → 1882 tok/s. Decode of 16 tokens (batch 1): 16 × 0.0025 = 0.04 s → 400 tok/s.

``StubLM.log`` lists every call as ``(tokens fed, cached tokens seen, start time)`` and
``machine.runs`` the name of the stub whose *prefill* (a call with an empty cache) started a run,
in order — what a grader reads to see warm-up and interleaving.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from .timing import PHASES, paired_seconds, summarize, tokens_per_second

STUB_VOCAB = 16


@dataclass
class StubMachine:
    """The shared clock of the stubs timed against each other (both models run on one machine)."""

    drift: float = 0.0
    sleep: bool = False
    now: float = 0.0
    runs: list[str] = field(default_factory=list)

    def clock(self) -> float:
        """Seconds on this machine's clock (virtual unless ``sleep=True``)."""
        return time.perf_counter() if self.sleep else self.now

    def spend(self, seconds: float) -> None:
        seconds *= math.exp(self.drift * self.now)
        if self.sleep:
            time.sleep(seconds)
        self.now += seconds


@dataclass
class StubCache:
    """What the stub hands back as ``past_key_values``: how many tokens it has cached per sequence."""

    owner: int
    length: int = 0

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length


@dataclass
class StubOutput:
    logits: torch.Tensor
    past_key_values: StubCache | None


class StubLM:
    """A causal LM with a known cost per call (see the module docstring)."""

    def __init__(self, name: str, machine: StubMachine, *, call_s: float = 0.002, token_s: float = 0.0005,
                 compile_s: float = 0.0):
        if call_s < 0 or token_s <= 0 or compile_s < 0:
            raise ValueError(f"costs must be ≥ 0 (token_s > 0), got call_s={call_s}, token_s={token_s}, "
                             f"compile_s={compile_s}")
        self.name, self.machine = name, machine
        self.call_s, self.token_s, self.compile_s = call_s, token_s, compile_s
        from ..models.tiny import tiny_config   # a real config: labkit's timer builds a DynamicCache from it

        self.config = tiny_config("llama")
        self.log: list[tuple[int, int, float]] = []

    def __repr__(self) -> str:
        return f"StubLM({self.name!r}, call_s={self.call_s}, token_s={self.token_s}, compile_s={self.compile_s})"

    def parameters(self):
        yield torch.zeros(1)

    def eval(self):
        return self

    def __call__(self, input_ids: torch.Tensor | None = None, past_key_values=None, use_cache: bool = True,
                 **kwargs) -> StubOutput:
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            got = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise ValueError(f"{self.name}: input_ids must be a (batch, tokens) tensor, got {got}")
        batch, new = input_ids.shape
        cache = past_key_values if isinstance(past_key_values, StubCache) and past_key_values.owner == id(self) else None
        cached = 0 if cache is None else cache.length
        if cached == 0:
            self.machine.runs.append(self.name)
        self.log.append((batch * new, cached, self.machine.now))
        cost = self.call_s + self.token_s * batch * new
        if len(self.log) == 1:
            cost += self.compile_s
        self.machine.spend(cost)
        out_cache = None
        if use_cache:
            out_cache = StubCache(id(self), cached + new)
        logits = torch.zeros(batch, new, STUB_VOCAB)
        logits[..., (cached + torch.arange(new)) % STUB_VOCAB] = 1.0     # a deterministic "next token"
        return StubOutput(logits, out_cache)

    # -- the known answers ----------------------------------------------------------------------
    def run_seconds(self, phase: str, batch: int, prompt_len: int, gen_len: int) -> float:
        """Cost of one timed run without drift or compilation: the prefill call, or gen_len decode steps."""
        if phase == "prefill":
            return self.call_s + self.token_s * batch * prompt_len
        if phase == "decode":
            return gen_len * (self.call_s + self.token_s * batch)
        raise ValueError(f"unknown phase {phase!r}; known phases: {', '.join(PHASES)}")

    def tokens_per_s(self, phase: str, batch: int, prompt_len: int, gen_len: int) -> float:
        """The throughput a correct timing loop measures on this stub (no drift, after warm-up)."""
        tokens = batch * (prompt_len if phase == "prefill" else gen_len)
        return tokens / self.run_seconds(phase, batch, prompt_len, gen_len)


def stub_pair(*, drift: float = 0.0, compile_s: float = 0.0, speedup: float = 2.0, sleep: bool = False,
              call_s: float = 0.002, token_s: float = 0.0005) -> tuple[StubLM, StubLM, StubMachine]:
    """A baseline stub and a "quantized" stub ``speedup`` times cheaper per call and per token, on one machine."""
    machine = StubMachine(drift=drift, sleep=sleep)
    base = StubLM("baseline", machine, call_s=call_s, token_s=token_s, compile_s=compile_s)
    quant = StubLM("quantized", machine, call_s=call_s / speedup, token_s=token_s / speedup, compile_s=compile_s)
    return base, quant, machine


# -- the reference timing loop with an injectable clock (what notebook 07's fill-ins are graded against)

def phase_seconds(model, ids: torch.Tensor, phase: str, gen_len: int, clock=time.perf_counter) -> float:
    """Seconds of the timed part of one run of ``phase``, read on ``clock``: the one prefill call, or
    the ``gen_len`` KV-cached greedy steps after an untimed prefill (the loop of ``labkit.bench.generation``,
    runner "hf"). ``ids: (batch, prompt_len)``."""
    with torch.inference_mode():
        if phase == "prefill":
            start = clock()
            model(input_ids=ids, use_cache=True)
            return clock() - start
        if phase != "decode":
            raise ValueError(f"unknown phase {phase!r}; known phases: {', '.join(PHASES)}")
        out = model(input_ids=ids, use_cache=True)
        cache, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
        start = clock()
        for _ in range(gen_len):
            out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
            cache, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
        return clock() - start


def time_phase(model, ids: torch.Tensor, phase: str, gen_len: int, clock=time.perf_counter) -> float:
    """Tokens/s of one run of ``phase`` (``phase_seconds`` → ``labkit.bench.timing.tokens_per_second``)."""
    seconds = phase_seconds(model, ids, phase, gen_len, clock)
    batch, prompt_len = ids.shape
    return tokens_per_second(phase, batch, prompt_len, gen_len, seconds)


def benchmark(baseline, quantized, ids: torch.Tensor, phase: str, gen_len: int, repeats: int = 5,
              warmup: int = 1, clock=time.perf_counter) -> dict[str, float]:
    """labkit's one paired loop (``timing.paired_seconds``: warm-up, interleaved pairs in alternating
    order) over ``phase_seconds`` on ``clock``, summarised by ``timing.summarize`` (medians, median
    paired speedup)."""
    batch, prompt_len = ids.shape
    quant_s, base_s = paired_seconds(lambda: phase_seconds(baseline, ids, phase, gen_len, clock),
                                     lambda: phase_seconds(quantized, ids, phase, gen_len, clock), repeats, warmup)
    t = summarize(phase, batch, prompt_len, gen_len, quant_s, base_s)
    return {"tokens_per_s": t.tokens_per_s, "baseline_tokens_per_s": t.baseline_tokens_per_s, "speedup": t.speedup}
