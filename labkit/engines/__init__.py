"""labkit.engines — running labkit-quantized weights inside other inference engines (nano-vllm on CUDA).

Layering: engines use ``labkit.nn`` and ``labkit.schemes`` (to quantize an engine's layers) and
import their engine lazily, only when used. ``labkit.bench.nanovllm`` imports them to time an engine
(``labkit bench nanovllm``); nothing below bench does.
"""
