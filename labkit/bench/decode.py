"""Decode tokens/s of one model + scheme, and how close it gets to its memory roofline.

A decode step at batch 1 reads every weight once plus the KV cache of the positions so far, so
``roofline_tokens_per_s = bandwidth / bytes_per_token`` is the speed limit of the machine, and
``roofline_fraction = tokens_per_s / roofline_tokens_per_s`` says how much of it a runner gets.
Worked number: SmolLM2-135M reads 538 MB of float32 weights per token (134.5 M matmul weights,
``roofline.model_matmul_params``) plus 30 layers × 2 (K, V) × 3 heads × 64 dims × 4 bytes = 46 KB of
cache per cached position (4.4 MB at 96 positions); at 15 GB/s that is ≤ 28 tokens/s. INT8 codes
with per-row scales read 135 MB + the same cache: ≤ 108 tokens/s.

``bytes_per_token`` counts what the runner reads: for the native runner its packed weights and
scales (merged q|k|v and gate|up), the embedding row of the token and the cache at the mean context
length of the timed steps (``prompt_len + (gen_len + 1) / 2``); the bandwidth is measured in the
same process at the same thread count (``roofline.measure_bandwidth``) unless given.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .roofline import measure_bandwidth, roofline_tokens_per_s


@dataclass(frozen=True)
class DecodeBytes:
    weights: float  # linears (+ scales) and the embedding row
    kv: float  # cache read per step at the mean context length

    @property
    def total(self) -> float:
        return self.weights + self.kv


def decode_bytes(model: nn.Module, prompt_len: int, gen_len: int, runner: str = "native") -> DecodeBytes:
    """Bytes one decode step of ``model`` reads (module docstring), for ``runner``."""
    from .throughput import matmul_weight_bytes

    cfg = model.config
    heads = cfg.num_attention_heads
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    context = prompt_len + (gen_len + 1) / 2
    kv = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * d * 4 * context
    native = getattr(model, "_labkit_native_decoder", None)
    if runner == "native" and native is not None:
        return DecodeBytes(float(native.bytes_per_token), kv)
    return DecodeBytes(float(matmul_weight_bytes(model) + cfg.hidden_size * 4), kv)


def roofline_fields(tokens_per_s: float, nbytes: DecodeBytes, bandwidth_gb_s: float, prefix: str = "") -> dict:
    """``{prefix}bytes_per_token``, ``{prefix}roofline_tokens_per_s``, ``{prefix}roofline_fraction``."""
    roof = roofline_tokens_per_s(nbytes.total, bandwidth_gb_s)
    return {f"{prefix}bytes_per_token": nbytes.total, f"{prefix}kv_bytes_per_token": nbytes.kv,
            f"{prefix}roofline_tokens_per_s": roof, f"{prefix}roofline_fraction": tokens_per_s / roof}


@dataclass(frozen=True)
class DecodeSpeed:
    """One model + scheme: median decode tokens/s over ``repeats`` runs of ``gen_len`` steps, its
    roofline, and the one-time cost (``build_s``: C build if not cached, weight packing, a warm-up
    run — never part of ``tokens_per_s``)."""

    scheme: str
    runner: str
    threads: int
    prompt_len: int
    gen_len: int
    repeats: int
    tokens_per_s: float
    seconds: tuple[float, ...]
    bytes_per_token: float
    kv_bytes_per_token: float
    bandwidth_gb_s: float
    roofline_tokens_per_s: float
    roofline_fraction: float
    build_s: float

    def as_dict(self) -> dict:
        d = asdict(self)
        d["seconds"] = list(self.seconds)
        return d


def measure_decode(model: Any, scheme: str = "none", *, threads: int = 1, prompt_len: int = 64, gen_len: int = 32,
                   repeats: int = 3, include_lm_head: bool = True, bandwidth_gb_s: float | None = None,
                   runner: str = "native", seed: int = 0) -> DecodeSpeed:
    """Greedy decode speed of ``model`` (a loaded float model or a model name) under ``scheme``
    (real mode) at batch 1 with ``threads`` threads (torch's for the prompt, the native step's pool
    for decode), and its roofline fraction."""
    from labkit.nn import quantize_model
    from labkit.schemes import get_scheme

    from .generation import greedy_decode
    from .throughput import random_prompt

    if isinstance(model, str):
        from labkit.models import load_model

        model, _ = load_model(model, dtype=torch.float32, device="cpu")
    name = get_scheme(scheme).name
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        start = time.perf_counter()
        run_model = model if name == "none" else quantize_model(model, name, "real", include_lm_head=include_lm_head).model
        ids = random_prompt(model.config.vocab_size, 1, prompt_len, seed)
        greedy_decode(run_model, ids, gen_len, runner=runner)  # build, pack, warm up
        build_s = time.perf_counter() - start
        seconds = [greedy_decode(run_model, ids, gen_len, runner=runner).seconds for _ in range(repeats)]
        bw = bandwidth_gb_s if bandwidth_gb_s is not None else measure_bandwidth(threads=threads).gb_s
        nbytes = decode_bytes(run_model, prompt_len, gen_len, runner)
    finally:
        torch.set_num_threads(before)
    tps = statistics.median(gen_len / s for s in seconds)
    roof = roofline_fields(tps, nbytes, bw)
    return DecodeSpeed(name, runner, threads, prompt_len, gen_len, repeats, tps, tuple(seconds), roof["bytes_per_token"],
                       nbytes.kv, bw, roof["roofline_tokens_per_s"], roof["roofline_fraction"], build_s)
