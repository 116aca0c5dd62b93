"""Tiny random transformers models (Qwen3, Qwen2, Llama) and a byte-level tokenizer, for fast tests.

A real model takes seconds to load and hundreds of MB of memory; a test of the Qwen3 code path only
needs the *architecture*: the same module classes (``Qwen3Attention`` with its q/k norms,
``Qwen3MLP`` with gate/up/down), the same linear names, the same forward. ``tiny_model`` builds one
from a small config — hidden 64, 2 layers, 4 query heads sharing 2 key/value heads, MLP width 128,
vocabulary 320 — which is about 0.1 M parameters (~0.5 MB in float32) and runs a forward in
milliseconds.

The weights are random but *seeded*: ``tiny_model("qwen3", seed=0)`` is the same model on every
machine and every call, and building it does not disturb the caller's global torch RNG (the init
runs inside ``torch.random.fork_rng``). Different seeds give different weights, so two tiny models
can stand in for "baseline" and "perturbed" in tests of the KL divergence.

``tiny_tokenizer`` is a byte-level BPE: every byte is a token, plus the merges " A", " B", " C",
" D" so that multiple-choice answers are single tokens exactly as in real LLM vocabularies, and a
``<|endoftext|>`` token. It encodes any text, so the evaluation code (perplexity, MMLU, KLD) can be
exercised end to end on the tiny model. ``save_tiny`` writes model + tokenizer as a normal Hugging
Face folder, which is what ``labkit.models.load_model`` reads.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, PretrainedConfig, PreTrainedModel, Qwen2Config, Qwen3Config

from .layer_maps import ARCHITECTURES

ARCHS = ARCHITECTURES  # a tiny model for every supported architecture

# Small enough for a unit test, large enough that GQA (4 query heads on 2 kv heads) is exercised
# and every linear has both dimensions > 1 (so per-row and per-group quantization differ).
_COMMON = dict(
    vocab_size=320,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
    bos_token_id=0,
    eos_token_id=0,
    pad_token_id=0,
)

_CONFIGS = {"llama": (LlamaConfig, {}), "qwen2": (Qwen2Config, {}), "qwen3": (Qwen3Config, {"head_dim": 16})}
assert set(_CONFIGS) == set(ARCHS), "a tiny config for every architecture of labkit.models.layer_maps"


def tiny_config(arch: str = "qwen3") -> PretrainedConfig:
    """The config of a tiny model of architecture ``arch`` ("qwen3", "qwen2" or "llama")."""
    if arch not in _CONFIGS:
        raise ValueError(f"unknown tiny architecture {arch!r}; known: {', '.join(ARCHS)}")
    config_class, extra = _CONFIGS[arch]
    return config_class(**_COMMON, **extra)


def tiny_model(arch: str = "qwen3", seed: int = 0, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """A seeded random causal LM of architecture ``arch``, in eval mode, on CPU.

    Same ``(arch, seed)`` → bitwise the same weights. The global RNG state is left untouched.
    Input ids: (batch, seq) with ids < 320; logits: (batch, seq, 320).
    """
    from transformers import AutoModelForCausalLM

    config = tiny_config(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        # The default init draws N(0, 0.02): logits are then almost uniform. A larger spread makes
        # the next-token distributions peaked enough that quantization noise shows in KL and PPL.
        for p in model.parameters():
            if p.dim() == 2:
                p.data.normal_(0.0, 0.15)
    model = model.to(dtype)
    model.eval()
    return model


def tiny_tokenizer():
    """A byte-level BPE tokenizer whose vocabulary fits the tiny models (ids < 320).

    ids 0: ``<|endoftext|>``; 1..256: the 256 bytes; 257..260: " A", " B", " C", " D".
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    alphabet.sort()
    vocab = {"<|endoftext|>": 0}
    for ch in alphabet:
        vocab[ch] = len(vocab)
    merges = [("Ġ", letter) for letter in "ABCD"]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )


def save_tiny(folder: str | Path, arch: str = "qwen3", seed: int = 0) -> Path:
    """Write a tiny model and its tokenizer as a Hugging Face folder; returns the folder."""
    folder = Path(folder)
    tiny_model(arch, seed).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder
