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

Benchmarking a quantized engine against its baseline is ``labkit.bench.nanovllm`` (``labkit bench
nanovllm``); this module only builds the engine.
"""

from __future__ import annotations

import atexit
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Iterator

import torch
from torch import nn

from labkit.nn import QuantLinear, QuantReport
from labkit.nn.convert import replace_linears
from labkit.schemes import Scheme, WeightOnly, get_scheme


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

    The swap itself is ``labkit.nn.convert.replace_linears`` (the one helper that swaps linears).
    Raises ``ValueError`` if a weight is NaN/Inf, if there is no linear to replace, or for tensor
    parallelism > 1 (see the module docstring); ``NoOpQuantizationError`` if nothing changed.
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

    def build(name: str, m: nn.Module) -> QuantLinear:
        # from_float reads .weight (out, in) and .bias; ParallelLMHead has no bias attribute at all
        source = m if isinstance(m, LinearBase) else SimpleNamespace(weight=m.weight, bias=None)
        return QuantLinear.from_float(source, scheme, mode="real")

    def install(name: str, new: QuantLinear) -> nn.Module:
        return QuantLMHead(new) if isinstance(model.get_submodule(name), ParallelLMHead) else new

    notes = ("lm_head is a separate quantized copy; the embedding stays in the model dtype",) if include_lm_head else ()
    return replace_linears(model, [n for n, _ in targets], build, scheme=scheme.name, mode="real", notes=notes,
                           install=install)


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


def close_llm(llm: Any) -> None:
    """Shut a nano-vllm ``LLM`` down once (it registers ``exit`` with atexit at construction)."""
    llm.exit()
    atexit.unregister(llm.exit)
