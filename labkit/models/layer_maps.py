"""Layer maps: the per-architecture facts that smoothing needs, written down as data.

SmoothQuant divides an activation channel by ``s_j`` and multiplies the matching weight column
by ``s_j``. At run time nobody should pay for the division, so it is *folded* into whatever
produced the activation. In a Llama-style decoder layer the producers are:

* ``input_layernorm`` (an RMSNorm) → ``q_proj``, ``k_proj``, ``v_proj``: the norm's weight
  becomes ``γ / s`` and the three projections share that one ``s``;
* ``post_attention_layernorm`` → ``gate_proj``, ``up_proj``: the same with the MLP;
* ``up_proj`` → ``down_proj``: the MLP computes ``down(act(gate(x)) · up(x))``, and the product is
  linear in ``up``'s output, so dividing ``up``'s output row j (weight row and bias) by ``s_j``
  divides ``down``'s input channel j by ``s_j``;
* ``v_proj`` → ``o_proj``: the attention output of head h is a convex combination of the value
  vectors of its key/value head, so it is linear in ``v_proj``'s output too. With grouped-query
  attention (``num_heads / num_kv_heads = r`` query heads share one kv head) a ``v_proj`` output
  channel feeds ``r`` input channels of ``o_proj``, which therefore must share one ``s``.

Architectures differ only in details that do not change the map:

* Qwen2 (Qwen2.5) has biases on q/k/v. Folding the *input* side leaves them alone:
  ``y = (x / s)(W · s)ᵀ + b = x Wᵀ + b`` — the bias is added after the matmul and never sees s.
  Folding the *output* side of ``v_proj`` (for ``o_proj``) does divide its bias by ``s``.
* Qwen3 normalises q and k per head (``q_norm``, ``k_norm``) *after* the projections; smoothing
  touches the projections' inputs and ``v``'s output, never q/k outputs, so those norms are
  unaffected.
* Nothing here is skipped on purpose: every decoder linear has a fold. The embeddings and the
  lm_head are not decoder linears and are never smoothed or quantized by the W8A8 schemes.

``layer_map(model)`` reads ``config.model_type`` and returns the map; an unknown architecture is an
error listing the known ones. ``ARCHITECTURES`` is the one list of supported architectures: the
loader accepts exactly these and ``labkit.models.tiny`` builds a test model of each. Adding an
architecture means adding it there (and a row to ``LAYER_MAPS`` if it is not Llama-like).

Which linears get quantized: ``DECODER_LINEARS`` of every decoder layer (``linear_names``) — the
seven projections — and never the embeddings or the lm_head (unless asked, for weight-only
schemes). ``labkit.nn.quantize_model`` cannot import this module (it sits a layer below) and
selects "every ``nn.Linear`` but the output projection", which on these architectures is the same
set; ``tests/models/test_layer_maps.py`` checks that the two agree on each architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

DECODER_LINEARS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)


@dataclass(frozen=True)
class NormFold:
    """``norm`` (relative to a decoder layer) produces the input of every linear in ``linears``."""

    norm: str
    linears: tuple[str, ...]


@dataclass(frozen=True)
class LinearFold:
    """``producer``'s output channels are ``consumer``'s input channels (up to a repeat for GQA).

    ``gqa=True``: consumer input channel ``c`` (head ``h = c // head_dim``, offset ``d``) comes from
    producer output channel ``(h // r) * head_dim + d`` with ``r = num_heads / num_kv_heads``.
    """

    producer: str
    consumer: str
    gqa: bool = False


@dataclass(frozen=True)
class LayerMap:
    """Where smoothing factors can be folded in one decoder layer of an architecture.

    ``layers``: attribute path from the causal LM to the list of decoder layers.
    ``norm_folds`` / ``linear_folds``: see ``NormFold`` / ``LinearFold``; names are relative to a layer.
    ``linears``: the decoder linears the W8A8 schemes quantize (relative to a layer).
    """

    arch: str
    layers: str
    norm_folds: tuple[NormFold, ...]
    linear_folds: tuple[LinearFold, ...]
    linears: tuple[str, ...] = DECODER_LINEARS


_LLAMA_LIKE_NORMS = (
    NormFold("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    NormFold("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
)
_LLAMA_LIKE_LINEARS = (
    LinearFold("self_attn.v_proj", "self_attn.o_proj", gqa=True),
    LinearFold("mlp.up_proj", "mlp.down_proj"),
)

ARCHITECTURES = ("llama", "qwen2", "qwen3")  # config.model_type values; the one list

LAYER_MAPS: dict[str, LayerMap] = {
    arch: LayerMap(arch, "model.layers", _LLAMA_LIKE_NORMS, _LLAMA_LIKE_LINEARS)
    for arch in ARCHITECTURES
}


def layer_map(model) -> LayerMap:
    """The layer map of ``model`` (a transformers causal LM), chosen by ``config.model_type``."""
    arch = getattr(getattr(model, "config", None), "model_type", None)
    if arch not in LAYER_MAPS:
        raise ValueError(
            f"no layer map for architecture {arch!r}; known: {', '.join(LAYER_MAPS)}. "
            "Add a LayerMap row to labkit.models.layer_maps.LAYER_MAPS (which norm feeds which linears)."
        )
    return LAYER_MAPS[arch]


def decoder_layers(model, lmap: LayerMap | None = None) -> list:
    """The decoder layers of ``model`` (``model.model.layers`` for Llama/Qwen2/Qwen3)."""
    lmap = lmap or layer_map(model)
    obj = model
    for part in lmap.layers.split("."):
        obj = getattr(obj, part)
    return list(obj)


def linear_names(model, lmap: LayerMap | None = None) -> list[str]:
    """Full module names (``model.layers.3.mlp.up_proj``) of every decoder linear, in order."""
    lmap = lmap or layer_map(model)
    n = len(decoder_layers(model, lmap))
    return [f"{lmap.layers}.{i}.{name}" for i in range(n) for name in lmap.linears]


def gqa_ratio(model) -> tuple[int, int]:
    """``(r, head_dim)``: query heads per key/value head, and the head dimension."""
    cfg = model.config
    heads = cfg.num_attention_heads
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    if heads % kv:
        raise ValueError(f"num_attention_heads={heads} is not a multiple of num_key_value_heads={kv}")
    return heads // kv, head_dim
