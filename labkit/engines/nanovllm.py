"""A quantized nano-vllm ``LLM`` without forking nano-vllm: wrap the weight loader.

nano-vllm (github.com/GeeeekExplorer/nano-vllm, CUDA only) builds its engine in
``ModelRunner.__init__``, in this order::

    self.model = Qwen3ForCausalLM(hf_config)     # LinearBase layers with empty weights
    load_model(self.model, config.model)         # nanovllm/utils/loader.py: safetensors → weights
    self.warmup_model()                          # runs a max-size batch, resets peak-memory stats
    self.allocate_kv_cache()                     # KV blocks = free memory after the model
    self.capture_cudagraph()                     # decode graphs for batch sizes 1..512

``ModelRunner`` calls ``load_model`` through the name it imported into
``nanovllm.engine.model_runner``. ``quantized_loading`` rebinds that one name, for the duration
of building an ``LLM``, to a loader that first runs nano-vllm's own loader and then swaps every
linear (``LinearBase``: ``qkv_proj``, ``o_proj``, ``gate_up_proj``, ``down_proj``) for labkit's real
``QuantLinear`` built from the loaded weight. Everything after the load sees the quantized model:
the warm-up exercises its kernels, the KV cache is sized with the memory the smaller weights freed,
and the CUDA graphs capture the quantized forward. Nothing in nano-vllm is copied or edited.

Why only tensor-parallel size 1: with TP > 1 the other ranks are *spawned* processes that import
an unpatched ``model_runner``; their shards would stay in bf16.

What "the same scheme" means on merged layers: nano-vllm stores q|k|v as one ``(q+2kv, hidden)``
weight and gate|up as one ``(2·inter, hidden)``. Per row and per group this changes nothing (each
output row keeps its own scales), but per tensor gives the merged matrix one scale where the HF
model has one per projection — a difference worth knowing when comparing numbers across engines.

The lm_head (``ParallelLMHead``) is optional (``include_lm_head``); its prefill path keeps only the
last position of every sequence, which ``QuantLMHead`` reproduces through nano-vllm's context.

Installing (a GPU machine with CUDA, flash-attn and triton): ``pip install
"nano-vllm @ git+https://github.com/GeeeekExplorer/nano-vllm.git"`` (the ``gpu`` extra of labkit
names it). On CPU the layer classes can be imported for tests from the PyPI package
``nano-vllm-fork`` (``pip install --no-deps nano-vllm-fork==20260210``) with stand-ins for its
CUDA-only imports (``tests/engines/test_nanovllm.py``).
"""

from __future__ import annotations

import argparse
import atexit
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Iterator

import torch
from torch import nn

from labkit.nn import QuantLinear, QuantReport
from labkit.schemes import Scheme, WeightOnly, get_scheme


def _relative_error(w: torch.Tensor, w_hat: torch.Tensor) -> float:
    w = w.detach().float()
    return float(torch.linalg.vector_norm(w - w_hat.float()) / torch.linalg.vector_norm(w).clamp_min(1e-30))


class QuantLMHead(nn.Module):
    """nano-vllm's ``ParallelLMHead`` forward (last position per sequence in prefill) on a ``QuantLinear``."""

    def __init__(self, linear: QuantLinear):
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from nanovllm.utils.context import get_context

        context = get_context()
        if context.is_prefill:
            x = x[context.cu_seqlens_q[1:] - 1].contiguous()
        return self.linear(x)

    def weight_bytes(self) -> int:
        return self.linear.weight_bytes()


def swap_linears(model: nn.Module, scheme: str | Scheme, include_lm_head: bool = False) -> QuantReport:
    """Replace every nano-vllm ``LinearBase`` in ``model`` (in place: nano-vllm owns the model) by a
    real-mode ``QuantLinear`` of the same weight and bias; optionally the lm_head too.

    Raises ``ValueError`` if a weight is NaN/Inf, if there is no linear to replace, or if nothing
    changed; ``ValueError`` for tensor parallelism > 1 (see the module docstring).
    """
    from nanovllm.layers.embed_head import ParallelLMHead
    from nanovllm.layers.linear import LinearBase

    scheme = get_scheme(scheme)
    if not isinstance(scheme, WeightOnly):
        raise ValueError(f"nano-vllm swap implements weight-only schemes, got {scheme!r}")
    targets = [(name, m) for name, m in model.named_modules()
               if isinstance(m, LinearBase) or (include_lm_head and isinstance(m, ParallelLMHead))]
    if not targets:
        raise ValueError(f"no nano-vllm LinearBase layer in {type(model).__name__}; is this a nano-vllm model?")
    for name, m in targets:
        if getattr(m, "tp_size", 1) != 1:
            raise ValueError(f"{name} is sharded over {m.tp_size} ranks; the swap supports tensor_parallel_size=1")
        if not torch.isfinite(m.weight).all():
            raise ValueError(f"{name} has NaN or Inf weights; check the checkpoint and the loader")
    before = after = 0
    errors: dict[str, float] = {}
    for name, m in targets:
        # from_float reads .weight (out, in) and .bias; ParallelLMHead has no bias attribute at all
        source = m if isinstance(m, LinearBase) else SimpleNamespace(weight=m.weight, bias=None)
        new = QuantLinear.from_float(source, scheme, mode="real")
        errors[name] = _relative_error(m.weight, new.dequantized_weight())
        before += m.weight.numel() * m.weight.element_size()
        after += new.weight_bytes()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, QuantLMHead(new) if isinstance(m, ParallelLMHead) else new)
    if max(errors.values()) == 0.0:
        raise ValueError(f"{scheme.name} left all {len(targets)} nano-vllm weights unchanged; nothing was quantized")
    notes = ("lm_head is a separate quantized copy; the embedding stays in the model dtype",) if include_lm_head else ()
    return QuantReport(scheme.name, "real", tuple(n for n, _ in targets), before, after, errors, notes)


@contextmanager
def quantized_loading(scheme: str | Scheme, include_lm_head: bool = False) -> Iterator[list[QuantReport]]:
    """While active, nano-vllm's ``ModelRunner`` loads weights and then quantizes them.

    Yields a list that receives one ``QuantReport`` per model loaded.
    """
    import nanovllm.engine.model_runner as runner_module

    original = runner_module.load_model
    reports: list[QuantReport] = []

    def load_then_quantize(model: nn.Module, path: str) -> None:
        original(model, path)
        reports.append(swap_linears(model, scheme, include_lm_head))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # give the bf16 weights' memory back before KV sizing

    runner_module.load_model = load_then_quantize
    try:
        yield reports
    finally:
        runner_module.load_model = original


@dataclass
class QuantizedLLM:
    llm: Any  # nanovllm.LLM
    report: QuantReport


def quantized_llm(model_path: str, scheme: str | Scheme, include_lm_head: bool = False, **llm_kwargs) -> QuantizedLLM:
    """``nanovllm.LLM(model_path, **llm_kwargs)`` whose linears are real-quantized with ``scheme``."""
    if llm_kwargs.get("tensor_parallel_size", 1) != 1:
        raise ValueError("quantized nano-vllm needs tensor_parallel_size=1: other ranks would load unquantized weights")
    from nanovllm import LLM

    with quantized_loading(scheme, include_lm_head) as reports:
        llm = LLM(model_path, **llm_kwargs)
    if len(reports) != 1:
        raise RuntimeError(f"nano-vllm called load_model {len(reports)} times while building the LLM (expected once); "
                           "has ModelRunner.__init__ changed how it loads weights?")
    return QuantizedLLM(llm, reports[0])


def _close(llm: Any) -> None:
    llm.exit()
    atexit.unregister(llm.exit)  # nano-vllm registers exit at construction; do not run it twice


def measure_engine(llm: Any, batch: int, prompt_len: int, gen_len: int, seed: int = 0) -> dict:
    """Time nano-vllm's scheduler steps: prefill steps (positive token counts) and decode steps."""
    from nanovllm import SamplingParams

    rng = random.Random(seed)
    params = SamplingParams(temperature=1.0, max_tokens=gen_len, ignore_eos=True)
    for _ in range(batch):
        llm.add_request([rng.randrange(0, 10000) for _ in range(prompt_len)], params)
    sums = {"prefill": [0.0, 0], "decode": [0.0, 0]}
    while not llm.is_finished():
        torch.cuda.synchronize()
        start = time.perf_counter()
        _, num_tokens = llm.step()
        torch.cuda.synchronize()
        phase = "prefill" if num_tokens > 0 else "decode"
        sums[phase][0] += time.perf_counter() - start
        sums[phase][1] += abs(num_tokens)
    return {phase: tokens / seconds for phase, (seconds, tokens) in sums.items() if seconds > 0}


def bench_nanovllm(args: argparse.Namespace) -> list[dict]:
    """``labkit bench --engine nanovllm``: baseline LLM, then quantized LLM (two engines cannot share
    the GPU's memory budget, so runs are sequential, not interleaved); median over repeats."""
    if not torch.cuda.is_available():
        raise RuntimeError("--engine nanovllm needs a CUDA GPU (nano-vllm uses flash-attn, triton and CUDA graphs); "
                           "this machine has none. Use the default --engine hf on CPU.")
    import statistics

    from labkit.bench.cli import resolve_schemes
    from labkit.bench.timing import PHASES

    phases = list(PHASES) if args.phase == "both" else [args.phase]
    kwargs = dict(enforce_eager=False, tensor_parallel_size=1, max_model_len=args.prompt_len + args.gen_len + 16)

    def runs(llm: Any) -> list[dict]:
        measure_engine(llm, 1, 16, 4, args.seed)  # warm-up
        return [measure_engine(llm, args.batch, args.prompt_len, args.gen_len, args.seed + i) for i in range(args.repeats)]

    from nanovllm import LLM

    base_llm = LLM(args.model, **kwargs)
    base_runs = runs(base_llm)
    _close(base_llm)
    rows = []
    for name in resolve_schemes(args.scheme or "int8-row"):
        q = quantized_llm(args.model, name, args.include_lm_head, **kwargs)
        q_runs = runs(q.llm)
        _close(q.llm)
        for phase in phases:
            tps = statistics.median(r[phase] for r in q_runs)
            base = statistics.median(r[phase] for r in base_runs)
            rows.append({
                "engine": "nanovllm", "model": args.model, "scheme": name, "mode": "real", "phase": phase,
                "tokens_per_s": tps, "baseline_tokens_per_s": base, "speedup": tps / base,
                "batch": args.batch, "prompt_len": args.prompt_len, "gen_len": args.gen_len,
                "repeats": args.repeats, "interleaved": False, "device": torch.cuda.get_device_name(),
                "torch_threads": torch.get_num_threads(), "weight_bytes": q.report.bytes_after,
                "baseline_weight_bytes": q.report.bytes_before, "layers": q.report.n_layers,
                "target": None, "target_met": None,
            })
    return rows
