"""``labkit bench nanovllm``: a quantized nano-vllm engine against its bf16 baseline (CUDA only).

The engine is built by ``labkit.engines.nanovllm`` (labkit's ``QuantLinear`` swapped in right after
nano-vllm loads its weights); this module only times it. Two engines cannot share one GPU's memory
budget, so the baseline runs first and is shut down before each quantized engine is built: the runs
are sequential, not interleaved (``"interleaved": False`` in every row). Each repeat times
nano-vllm's own scheduler steps — prefill steps (positive token counts) and decode steps —
with ``torch.cuda.synchronize`` around each; the rows report medians over repeats.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any, Sequence

import torch


def measure_engine(llm: Any, batch: int, prompt_len: int, gen_len: int, seed: int = 0) -> dict:
    """Tokens/s of one batch through ``llm``'s scheduler: ``{"prefill": ..., "decode": ...}``."""
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


def bench_nanovllm(model_path: str, schemes: Sequence[str], phases: Sequence[str], *, batch: int = 1,
                   prompt_len: int = 128, gen_len: int = 32, repeats: int = 5, include_lm_head: bool = True,
                   seed: int = 0) -> list[dict]:
    """One row per (scheme, phase): median tokens/s of the quantized engine and of the baseline."""
    if not torch.cuda.is_available():
        raise RuntimeError("labkit bench nanovllm needs a CUDA GPU (nano-vllm uses flash-attn, triton and CUDA "
                           "graphs); this machine has none. On CPU use `labkit bench` (the native decode runner).")
    from nanovllm import LLM

    from labkit.engines.nanovllm import close_llm, quantized_llm

    kwargs = dict(enforce_eager=False, tensor_parallel_size=1, max_model_len=prompt_len + gen_len + 16)

    def runs(llm: Any) -> list[dict]:
        measure_engine(llm, 1, 16, 4, seed)  # warm-up
        return [measure_engine(llm, batch, prompt_len, gen_len, seed + i) for i in range(repeats)]

    base_llm = LLM(model_path, **kwargs)
    base_runs = runs(base_llm)
    close_llm(base_llm)
    rows = []
    for name in schemes:
        q = quantized_llm(model_path, name, include_lm_head, **kwargs)
        q_runs = runs(q.llm)
        close_llm(q.llm)
        for phase in phases:
            tps = statistics.median(r[phase] for r in q_runs)
            base = statistics.median(r[phase] for r in base_runs)
            rows.append({
                "engine": "nanovllm", "model": model_path, "scheme": name, "mode": "real", "phase": phase,
                "tokens_per_s": tps, "baseline_tokens_per_s": base, "speedup": tps / base,
                "batch": batch, "prompt_len": prompt_len, "gen_len": gen_len,
                "repeats": repeats, "interleaved": False, "device": torch.cuda.get_device_name(),
                "torch_threads": torch.get_num_threads(), "weight_bytes": q.report.bytes_after,
                "baseline_weight_bytes": q.report.bytes_before, "layers": q.report.n_layers,
                "target": None, "target_met": None,
            })
    return rows
