"""Model-level SmoothQuant: fold the smoothing factors into the weights, leave plain modules behind.

For one fold site (a norm or a linear producing the input of some linears) the recipe is

    act_j = max over calibration tokens of |x_j|          (labkit.models.calibration)
    w_j   = max over all consumer weights of |W[:, j]|    (one s must serve every consumer)
    s_j   = act_j^α / w_j^(1−α)                           (labkit.quant.smoothquant.smooth_factors)

then the producer divides its output channel j by ``s_j`` and every consumer multiplies its input
column j by ``s_j``. In exact arithmetic the model computes the same function; in float32 the logits
move by rounding only (the tests check this on tiny Llama, Qwen2 — with q/k/v biases — and Qwen3).
What changed is *where the range lives*: the consumers' input activations are flatter, their
weights rougher, which is what a W8A8 quantizer applied afterwards cares about.

Which producers feed which consumers is per-architecture data (``labkit.models.layer_maps``).
``scope="norms"`` smooths only the linears that read a norm (q/k/v, gate/up — the choice of the
SmoothQuant paper's Llama code); ``scope="all"`` also folds ``down_proj``'s factors into
``up_proj`` and ``o_proj``'s into ``v_proj`` (shared across the query heads of a kv group), so
every decoder linear is smoothed — like torchao's ``SmoothQuantConfig``, which smooths every linear
but keeps ``1/s`` as a run-time multiplication of the activation instead of folding it.

Design choice: ``smooth_model`` is pure. It deep-copies the model and returns the copy with the
factors it used, so a notebook can compare the smoothed model with the untouched baseline.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from ..quant.smoothquant import fold_into_linear, fold_into_norm, smooth_factors, weight_channel_absmax
from .calibration import ActivationStats
from .layer_maps import LayerMap, decoder_layers, gqa_ratio, layer_map

SCOPES = ("norms", "all")


@dataclass(frozen=True)
class SmoothingResult:
    """A smoothed copy of a model. ``factors[site]``: the ``s`` folded at that site — full module
    name of the producer (``model.layers.0.input_layernorm``, ``model.layers.0.mlp.up_proj``);
    for a GQA fold the factor is the producer's ``(kv_heads·head_dim,)`` one."""

    model: nn.Module
    factors: dict[str, torch.Tensor] = field(repr=False)
    alpha: float
    scope: str

    def __repr__(self) -> str:
        return f"SmoothingResult(alpha={self.alpha}, scope={self.scope!r}, {len(self.factors)} fold sites)"


def _get(layer: nn.Module, path: str) -> nn.Module:
    obj = layer
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _set_weight(module: nn.Module, name: str, value: torch.Tensor) -> None:
    getattr(module, name).data = value


@torch.no_grad()
def smooth_model(model: nn.Module, stats: ActivationStats, alpha: float = 0.5, scope: str = "all") -> SmoothingResult:
    """A copy of ``model`` with SmoothQuant factors (strength ``alpha`` ∈ [0, 1]) folded in.

    ``stats`` must come from ``calibrate`` on this model (same module names). ``model`` is unchanged.
    ``alpha = 0`` still rescales (``s = 1 / max|W_j|``): it moves the *weights'* range, not the
    activations'; only a missing fold changes nothing.
    """
    return fold_smoothing_(copy.deepcopy(model), stats, alpha, scope)


@torch.no_grad()
def fold_smoothing_(model: nn.Module, stats: ActivationStats, alpha: float = 0.5, scope: str = "all") -> SmoothingResult:
    """``smooth_model`` working *in place* on ``model`` (the trailing underscore says so): for callers
    that already hold a private copy (``quantize_model``'s preparer), to avoid a second copy of the weights."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    lmap: LayerMap = layer_map(model)
    new = model
    factors: dict[str, torch.Tensor] = {}
    for i, layer in enumerate(decoder_layers(new, lmap)):
        prefix = f"{lmap.layers}.{i}."
        for fold in lmap.norm_folds:
            norm = _get(layer, fold.norm)
            consumers = [_get(layer, n) for n in fold.linears]
            # All consumers read the same tensor; taking the max over their records is a no-op in
            # a plain model and robust if hooks saw slightly different inputs.
            act = torch.stack([stats[prefix + n] for n in fold.linears]).amax(dim=0)
            s = smooth_factors(act, weight_channel_absmax(*(c.weight for c in consumers)), alpha)
            _set_weight(norm, "weight", fold_into_norm(norm.weight, s.to(norm.weight.device)))
            if getattr(norm, "bias", None) is not None:
                _set_weight(norm, "bias", fold_into_norm(norm.bias, s.to(norm.bias.device)))
            for c in consumers:
                _set_weight(c, "weight", fold_into_linear(c.weight, s.to(c.weight.device)))
            factors[prefix + fold.norm] = s
        if scope == "norms":
            continue
        for fold in lmap.linear_folds:
            producer, consumer = _get(layer, fold.producer), _get(layer, fold.consumer)
            act = stats[prefix + fold.consumer]
            wmax = weight_channel_absmax(consumer.weight)
            if fold.gqa:
                r, head_dim = gqa_ratio(model)
                # consumer channel (h, d) reads producer channel (h // r, d): reduce over the r heads
                act = act.reshape(-1, r, head_dim).amax(dim=1).reshape(-1)
                wmax = wmax.reshape(-1, r, head_dim).amax(dim=1).reshape(-1)
            s = smooth_factors(act, wmax, alpha)
            s_in = s.reshape(-1, 1, head_dim).expand(-1, r, head_dim).reshape(-1) if fold.gqa else s
            if producer.weight.shape[0] != s.shape[0]:
                raise ValueError(
                    f"{prefix + fold.producer} has {producer.weight.shape[0]} outputs but {prefix + fold.consumer} "
                    f"needs {s.shape[0]} factors: the layer map does not fit this model"
                )
            _set_weight(consumer, "weight", fold_into_linear(consumer.weight, s_in.to(consumer.weight.device)))
            w = producer.weight
            _set_weight(producer, "weight", (w.float() / s.to(w.device)[:, None]).to(w.dtype))
            if producer.bias is not None:
                _set_weight(producer, "bias", fold_into_norm(producer.bias, s.to(producer.bias.device)))
            factors[prefix + fold.producer] = s
    return SmoothingResult(new, factors, float(alpha), scope)
