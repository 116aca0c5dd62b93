"""A lean forward pass for Llama / Qwen2 / Qwen3 decoders: the same modules, less Python per token.

Why it exists. Decode of a small model is a few milliseconds of matmuls per token, and a
transformers forward adds a comparable amount of Python around them (output dataclasses, mask
construction, cache objects, per-module hooks, kwargs plumbing) — the same for the fp32 baseline
and for the 8-bit model, so it *dilutes* the speedup that the bytes allow. gpt-fast and nano-vllm
solve this with CUDA graphs or ``torch.compile``; on a 2-core CPU a compile costs minutes, so this
module does the plain thing: one function that walks the layers and calls **the model's own
modules** (``q_proj`` … ``down_proj``, the norms' weights, the lm_head) — whatever they are, fp32
``nn.Linear`` or a quantized ``QuantLinear`` — with a preallocated KV cache and precomputed rotary
tables. Nothing is copied or converted: the weights the benchmark measures are the model's.

Per layer, for ``x: (batch, T, hidden)`` at positions ``p .. p+T-1``::

    h  = rmsnorm(x) ;  q, k, v = q_proj(h), k_proj(h), v_proj(h)   (Qwen3: per-head q/k RMSNorm)
    q, k = rope(q, k) ;  K[:, :, p:p+T], V[:, :, p:p+T] = k, v
    x += o_proj(sdpa(q, K[:, :, :p+T], V[:, :, :p+T], causal if T > 1, grouped-query heads))
    x += down_proj(silu(gate_proj(rmsnorm(x))) * up_proj(rmsnorm(x)))

and the lm_head runs on the last position only. ``tests/bench/test_lean.py`` checks the logits
against transformers' own forward (prefill and cached steps) for all three architectures.
Restrictions, checked up front: RMSNorm + SiLU-gated MLP + full causal attention (no sliding
window), which covers SmolLM2, Qwen2.5 and Qwen3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

ARCHS = ("llama", "qwen2", "qwen3")


def _rmsnorm(x: torch.Tensor, norm: Any) -> torch.Tensor:
    # Same arithmetic as HF's Llama/Qwen RMSNorm: statistics in float32, weight applied last.
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight * xf.to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def check_supported(model: Any) -> None:
    """Raise ``ValueError`` naming what is unsupported if the lean path cannot run ``model``."""
    config = model.config
    arch = getattr(config, "model_type", None)
    if arch not in ARCHS:
        raise ValueError(f"the lean decoder supports {', '.join(ARCHS)}; model has model_type {arch!r}")
    if getattr(config, "hidden_act", "silu") != "silu":
        raise ValueError(f"the lean decoder needs a SiLU-gated MLP; config.hidden_act is {config.hidden_act!r}")
    if getattr(config, "use_sliding_window", False) or "sliding_attention" in (getattr(config, "layer_types", None) or ()):
        raise ValueError("the lean decoder runs full causal attention; this config uses a sliding window")


@dataclass
class LeanState:
    """KV cache ``(layers, batch, kv_heads, max_len, head_dim)`` for keys and values, and rotary tables."""

    keys: torch.Tensor
    values: torch.Tensor
    cos: torch.Tensor  # (max_len, head_dim)
    sin: torch.Tensor
    length: int = 0


class LeanDecoder:
    """Runs ``model`` (an HF Llama/Qwen2/Qwen3 causal LM) with a preallocated cache.

    ``start(batch, max_len)`` → a fresh ``LeanState``; ``step(ids, state)`` → last-position logits
    ``(batch, vocab)`` and advances ``state.length`` by ``ids.shape[1]``.
    """

    def __init__(self, model: Any):
        check_supported(model)
        self.model = model
        core = model.model
        self.embed = core.embed_tokens
        self.layers = list(core.layers)
        self.norm = core.norm
        self.lm_head = model.lm_head
        self.rotary = core.rotary_emb
        attn = self.layers[0].self_attn
        self.head_dim = attn.head_dim
        cfg = model.config
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.has_qk_norm = hasattr(attn, "q_norm")

    def start(self, batch: int, max_len: int) -> LeanState:
        """Allocate the KV cache and rotary tables for ``batch`` sequences of up to ``max_len`` tokens."""
        p = self.embed.weight
        shape = (len(self.layers), batch, self.n_kv, max_len, self.head_dim)
        dtype = p.dtype if p.is_floating_point() else torch.float32
        positions = torch.arange(max_len, device=p.device).unsqueeze(0)
        probe = torch.empty(1, dtype=dtype, device=p.device)
        cos, sin = self.rotary(probe, positions)
        return LeanState(
            keys=torch.zeros(shape, dtype=dtype, device=p.device),
            values=torch.zeros(shape, dtype=dtype, device=p.device),
            cos=cos[0],
            sin=sin[0],
        )

    def step(self, ids: torch.Tensor, state: LeanState) -> torch.Tensor:
        """Feed ``ids: (batch, T)`` at the next positions; return logits of the last one, ``(batch, vocab)``."""
        return self.lm_head(self.hidden(ids, state))

    def hidden(self, ids: torch.Tensor, state: LeanState) -> torch.Tensor:
        """``step`` without the lm_head: the final-normed hidden state of the last position, ``(batch, hidden)``."""
        batch, t = ids.shape
        p0 = state.length
        end = p0 + t
        if end > state.keys.shape[3]:
            raise ValueError(f"the cache holds {state.keys.shape[3]} positions; step would reach {end}")
        cos = state.cos[p0:end].unsqueeze(0).unsqueeze(0)  # (1, 1, T, D)
        sin = state.sin[p0:end].unsqueeze(0).unsqueeze(0)
        x = self.embed(ids)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = _rmsnorm(x, layer.input_layernorm)
            q = attn.q_proj(h).view(batch, t, self.n_heads, self.head_dim)
            k = attn.k_proj(h).view(batch, t, self.n_kv, self.head_dim)
            v = attn.v_proj(h).view(batch, t, self.n_kv, self.head_dim)
            if self.has_qk_norm:
                q = _rmsnorm(q, attn.q_norm)
                k = _rmsnorm(k, attn.k_norm)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            state.keys[i, :, :, p0:end] = k
            state.values[i, :, :, p0:end] = v
            o = self._attend(q, state.keys[i, :, :, :end], state.values[i, :, :, :end], p0)
            x = x + attn.o_proj(o.transpose(1, 2).reshape(batch, t, -1))
            mlp = layer.mlp
            h = _rmsnorm(x, layer.post_attention_layernorm)
            x = x + mlp.down_proj(F.silu(mlp.gate_proj(h)) * mlp.up_proj(h))
        state.length = end
        return _rmsnorm(x[:, -1], self.norm)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p0: int) -> torch.Tensor:
        """q: (batch, heads, T, D) at positions p0..p0+T-1; k, v: (batch, kv_heads, p0+T, D)."""
        gqa = self.n_kv != self.n_heads
        t = q.shape[2]
        if t == 1:  # one new token sees every cached one: no mask needed
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
        if p0 == 0:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        # T > 1 new tokens after p0 cached ones: query j sees keys 0 .. p0 + j.
        mask = torch.ones(t, k.shape[2], dtype=torch.bool, device=q.device).tril(diagonal=p0)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
