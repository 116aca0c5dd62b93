"""labkit.engines — running labkit-quantized weights inside other inference engines (nano-vllm on CUDA).

Modules here import their engine lazily and only when used; nothing in labkit imports them back.
"""
