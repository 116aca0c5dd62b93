"""The timed loops: one prefill, and a greedy KV-cached decode of a fixed number of tokens.

Why not ``model.generate``? It is the right tool to *use* a model, but a poor stopwatch for decode:
every step runs logits processors, stopping criteria, cache bookkeeping and ``GenerationConfig``
checks in Python. With SmolLM2-135M quantized to 8 bits the matmuls of one token take a few
milliseconds on 2 cores, so per-step Python work of the same order hides exactly the effect we want
to measure. The loop here is what a serving engine does per step and nothing else::

    logits, cache = model(prompt)                 # prefill: fills the KV cache (not timed for decode)
    for step in range(gen_len):                   # timed
        token = argmax(logits[:, -1])             # greedy, no early stop at EOS
        logits, cache = model(token, cache, position)

under ``torch.inference_mode()`` (no autograd bookkeeping), with ``logits_to_keep=1`` so the
prefill computes the lm_head for the last position only (a 49152-wide lm_head over 128 prompt
positions would otherwise cost as much as a decoder layer), and with the cache positions made once
before the clock starts. ``greedy_decode`` returns the tokens too, so a test can check the loop
against ``model.generate(do_sample=False)``.

Three runners share this contract. ``runner="lean"`` (the default) is ``labkit.bench.lean``: the
model's own modules driven by a minimal loop with a preallocated KV cache (about half the per-step
Python of the transformers forward; ``labkit bench --runner lean`` vs ``--runner hf`` measures it).
``runner="native"`` (batch 1, CPU; what ``labkit bench`` uses there) prefills like ``lean`` (but
for the last position's lm_head, a native GEMV) and runs each decode step as one C call on weights packed for the GEMV (``labkit.bench.native``); the
packing and the one-time C build happen outside the clock. ``runner="hf"`` calls the transformers
model with a ``DynamicCache`` (a preallocated ``StaticCache`` was no faster there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from .lean import LeanDecoder

CACHES = ("dynamic", "static")


def _new_cache(model: Any, kind: str, max_len: int):
    from transformers import DynamicCache, StaticCache

    if kind == "dynamic":
        return DynamicCache(config=model.config)
    if kind == "static":
        return StaticCache(config=model.config, max_cache_len=max_len)
    raise ValueError(f"unknown cache {kind!r}; known caches: {', '.join(CACHES)}")


def _check_ids(input_ids: torch.Tensor) -> None:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.numel() == 0:
        shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
        raise ValueError(f"input_ids must be a non-empty (batch, prompt_len) integer tensor, got {shape}")
    if input_ids.is_floating_point():
        raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")


@dataclass(frozen=True)
class PrefillRun:
    """One prefill: wall-clock ``seconds`` and the greedy next token per sequence, ``(batch,)``."""

    seconds: float
    next_tokens: torch.Tensor


@dataclass(frozen=True)
class DecodeRun:
    """One decode: ``seconds`` for the ``gen_len`` steps only; ``tokens``: (batch, gen_len) generated ids.

    ``tokens[:, 0]`` is the prefill's greedy token; steps feed it and produce ``tokens[:, 1:]`` plus
    one more (so ``gen_len`` forward passes make ``gen_len`` new tokens after the prefill's one; the
    last produced token is dropped from ``tokens`` to keep its length ``gen_len``).
    """

    seconds: float
    tokens: torch.Tensor


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


RUNNERS = ("lean", "native", "hf")


@torch.inference_mode()
def prefill(model: Any, input_ids: torch.Tensor, runner: str = "lean", cache: str = "dynamic") -> PrefillRun:
    """Time one forward pass over ``input_ids: (batch, prompt_len)`` that fills a KV cache and ends
    with the next token's logits (what a server does with a new prompt)."""
    _check_ids(input_ids)
    device = input_ids.device
    batch, prompt_len = input_ids.shape
    if runner == "native" and batch == 1 and device.type == "cpu":
        from .native import native_decoder

        dec = native_decoder(model, prompt_len + 1)  # packed once per model (a warm-up run pays it)
        start = time.perf_counter()
        nxt = torch.tensor([dec.prefill(input_ids)])  # lean decoder layers, native lm_head GEMV
    elif runner in ("lean", "native"):  # batch > 1: the lean loop (compute bound: library GEMMs)
        lean = LeanDecoder(model)
        state = lean.start(batch, prompt_len + 1)
        _sync(device)
        start = time.perf_counter()
        nxt = lean.step(input_ids, state).argmax(-1)
    elif runner == "hf":
        kv = _new_cache(model, cache, prompt_len + 1)
        _sync(device)
        start = time.perf_counter()
        nxt = model(input_ids=input_ids, past_key_values=kv, use_cache=True, logits_to_keep=1).logits[:, -1].argmax(-1)
    else:
        raise ValueError(f"unknown runner {runner!r}; known runners: {', '.join(RUNNERS)}")
    _sync(device)
    return PrefillRun(time.perf_counter() - start, nxt)


@torch.inference_mode()
def greedy_decode(
    model: Any, input_ids: torch.Tensor, gen_len: int, runner: str = "lean", cache: str = "dynamic"
) -> DecodeRun:
    """Prefill ``input_ids`` (untimed), then time ``gen_len`` one-token greedy steps with the KV cache."""
    _check_ids(input_ids)
    if isinstance(gen_len, bool) or not isinstance(gen_len, int) or gen_len < 1:
        raise ValueError(f"gen_len must be a positive integer, got {gen_len!r}")
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; known runners: {', '.join(RUNNERS)}")
    device = input_ids.device
    batch, prompt_len = input_ids.shape
    tokens = torch.empty(batch, gen_len, dtype=torch.long, device=device)
    if runner == "native":
        from .native import native_decoder

        if batch != 1:
            raise ValueError(f"runner 'native' decodes one sequence; got batch {batch} (use runner 'lean')")
        dec = native_decoder(model, prompt_len + gen_len)
        nxt_id = dec.prefill(input_ids)
        out: list[int] = []
        start = time.perf_counter()
        for _ in range(gen_len):
            out.append(nxt_id)
            nxt_id = dec.step(nxt_id)
        seconds = time.perf_counter() - start
        return DecodeRun(seconds, torch.tensor([out], dtype=torch.long, device=device))
    if runner == "lean":
        lean = LeanDecoder(model)
        state = lean.start(batch, prompt_len + gen_len)
        nxt = lean.step(input_ids, state).argmax(-1, keepdim=True)  # (batch, 1)
        _sync(device)
        start = time.perf_counter()
        for step in range(gen_len):
            tokens[:, step : step + 1] = nxt
            nxt = lean.step(nxt, state).argmax(-1, keepdim=True)
    else:
        kv = _new_cache(model, cache, prompt_len + gen_len + 1)
        out = model(input_ids=input_ids, past_key_values=kv, use_cache=True, logits_to_keep=1)
        nxt = out.logits[:, -1:].argmax(-1)
        positions = torch.arange(prompt_len, prompt_len + gen_len, device=device).unsqueeze(1)  # (gen_len, 1)
        _sync(device)
        start = time.perf_counter()
        for step in range(gen_len):
            tokens[:, step : step + 1] = nxt
            out = model(input_ids=nxt, past_key_values=kv, use_cache=True, cache_position=positions[step])
            nxt = out.logits[:, -1:].argmax(-1)
    _sync(device)
    return DecodeRun(time.perf_counter() - start, tokens)
