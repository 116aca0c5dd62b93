"""quantize_model: swap a model's decoder linears for quantized ones and report what it cost.

    result = quantize_model(model, "int8-row", mode="real")
    result.model    # a NEW model (deep copy); ``model`` itself is untouched
    print(result.report)   # SmolLM2-135M, float32 (measured):
    # int8-row (real): 210 layers replaced (model.layers.0.self_attn.q_proj, ...)
    #   weight bytes 405.0 MiB -> 101.8 MiB (3.98x smaller), worst relative error 0.01162 (...)

Which layers: every ``nn.Linear`` of the model — in Llama, Qwen2 and Qwen3 that is q/k/v/o of the
attention and gate/up/down of the MLP — except the output projection (``lm_head``) unless
``include_lm_head=True``. Embeddings are ``nn.Embedding`` and never touched. SmolLM2 *ties*
lm_head to the token embedding (one tensor); quantizing lm_head then builds a new layer from a
copy, so the embedding keeps its full-precision weight, and the copy's config says the two are no
longer tied.

How a layer is replaced depends on the scheme's *type*, looked up in ``HANDLERS`` (torchao's
handler registry): ``register_handler(WeightOnly)`` below maps weight-only schemes to
``QuantLinear.from_float``. Another module adds its own scheme type with
``@register_handler(MyScheme)``. A handler returns a module with ``dequantized_weight()`` (the
float32 ``(out, in)`` it multiplies by) and ``weight_bytes()``, which the report reads.

The report guards against the failures students hit: zero layers replaced, or a quantization that
changed no weight at all (a no-op reported as a result), is an error; so are NaN/Inf weights
(named by layer). The worst relative error is ``max over layers ||W - Ŵ||_F / ||W||_F``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..schemes import Baseline, Scheme, WeightOnly, get_scheme
from .quant_linear import QuantLinear, check_mode

Handler = Callable[[nn.Linear, Scheme, str], nn.Module]
HANDLERS: dict[type, Handler] = {}


def register_handler(scheme_type: type) -> Callable[[Handler], Handler]:
    """Decorator: ``handler(linear, scheme, mode) -> module`` for schemes of ``scheme_type``."""
    def decorate(fn: Handler) -> Handler:
        HANDLERS[scheme_type] = fn
        return fn
    return decorate


@register_handler(WeightOnly)
def _weight_only(linear: nn.Linear, scheme: Scheme, mode: str) -> nn.Module:
    return QuantLinear.from_float(linear, scheme, mode)


# Model-level preparation that must run before the linears are swapped (e.g. SmoothQuant folds
# calibrated factors into norms and weights): ``preparer(model, scheme) -> model``, may work in place
# on the copy it is given. Registered by the module that owns the scheme type.
Preparer = Callable[[nn.Module, Scheme], nn.Module]
PREPARERS: dict[type, Preparer] = {}


def register_preparer(scheme_type: type) -> Callable[[Preparer], Preparer]:
    """Decorator: ``preparer(model, scheme) -> model`` run by ``quantize_model`` before the handler."""
    def decorate(fn: Preparer) -> Preparer:
        PREPARERS[scheme_type] = fn
        return fn
    return decorate


def _handler_for(scheme: Scheme) -> Handler:
    for klass in type(scheme).__mro__:
        if klass in HANDLERS:
            return HANDLERS[klass]
    raise TypeError(f"no handler registered for {type(scheme).__name__}; register one with "
                    f"@labkit.nn.convert.register_handler({type(scheme).__name__})")


@dataclass(frozen=True)
class QuantReport:
    """What ``quantize_model`` did. Bytes count the replaced layers' weights (codes + scales after)."""

    scheme: str
    mode: str
    layers: tuple[str, ...]
    bytes_before: int
    bytes_after: int
    errors: dict[str, float] = field(default_factory=dict)  # layer → ||W - Ŵ|| / ||W||
    notes: tuple[str, ...] = ()

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def worst_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def worst_layer(self) -> str | None:
        return max(self.errors, key=self.errors.get) if self.errors else None

    @property
    def compression(self) -> float:
        return self.bytes_before / self.bytes_after if self.bytes_after else 1.0

    def __str__(self) -> str:
        if not self.layers:
            return f"{self.scheme} ({self.mode}): baseline, nothing quantized"
        shown = ", ".join(self.layers[:3]) + (", ..." if self.n_layers > 3 else "")
        lines = [f"{self.scheme} ({self.mode}): {self.n_layers} layers replaced ({shown})",
                 f"  weight bytes {self.bytes_before / 2**20:.1f} MiB -> {self.bytes_after / 2**20:.1f} MiB "
                 f"({self.compression:.2f}x smaller), worst relative error {self.worst_error:.4g} "
                 f"({self.worst_layer})"]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


@dataclass
class QuantResult:
    model: nn.Module
    report: QuantReport


def _output_layer_name(model: nn.Module) -> str | None:
    getter = getattr(model, "get_output_embeddings", None)
    out = getter() if callable(getter) else None
    if out is None:
        return "lm_head" if isinstance(getattr(model, "lm_head", None), nn.Linear) else None
    return next((name for name, m in model.named_modules() if m is out), None)


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _relative_error(w: torch.Tensor, w_hat: torch.Tensor) -> float:
    w = w.detach().to(torch.float32)
    norm = torch.linalg.vector_norm(w).item()
    diff = torch.linalg.vector_norm(w - w_hat.to(torch.float32)).item()
    return diff / norm if norm > 0 else diff


def quantize_model(model: nn.Module, scheme: str | Scheme, mode: str = "fake", *,
                   include_lm_head: bool = False, inplace: bool = False) -> QuantResult:
    """Replace the decoder linears of ``model`` by quantized modules; see the module docstring.

    ``scheme``: a short name (``"int8-row"``, ``"fp8-group128"``, ``"none"``) or a ``Scheme``;
    ``mode``: ``"fake"`` or ``"real"``. Returns ``QuantResult(model, report)``; the model is a deep
    copy unless ``inplace=True``. ``"none"`` returns the (copied) model with an empty report.
    """
    scheme = get_scheme(scheme)
    check_mode(mode)
    handler = None if isinstance(scheme, Baseline) else _handler_for(scheme)
    target = model if inplace else copy.deepcopy(model)
    if handler is None:
        return QuantResult(target, QuantReport(scheme.name, mode, (), 0, 0))

    prepare = next((PREPARERS[k] for k in type(scheme).__mro__ if k in PREPARERS), None)
    if prepare is not None:
        target = prepare(target, scheme)
    output_name = _output_layer_name(target)
    names = [name for name, m in target.named_modules()
             if isinstance(m, nn.Linear) and (include_lm_head or name != output_name)]
    if not names:
        raise ValueError(f"no nn.Linear layer to quantize in {type(model).__name__}: expected the decoder's "
                         "q/k/v/o and gate/up/down projections; was the model already quantized?")

    notes = []
    if include_lm_head and output_name in names:
        embed = getattr(target, "get_input_embeddings", lambda: None)()
        if embed is not None and embed.weight is target.get_submodule(output_name).weight:
            notes.append(f"{output_name} was tied to the embedding; it is now a separate quantized copy and "
                         "the embedding stays in full precision")
            if getattr(target, "config", None) is not None and hasattr(target.config, "tie_word_embeddings"):
                target.config.tie_word_embeddings = False

    for name in names:  # check all first, so that inplace=True never leaves a half-converted model
        if not torch.isfinite(target.get_submodule(name).weight).all():
            raise ValueError(f"layer {name} has NaN or Inf weights; quantizing them would hide the problem — "
                             "check how the model was loaded or trained")
    before = after = 0
    errors: dict[str, float] = {}
    for name in names:
        linear = target.get_submodule(name)
        new = handler(linear, scheme, mode)
        errors[name] = _relative_error(linear.weight, new.dequantized_weight())
        before += linear.weight.numel() * linear.weight.element_size()
        after += new.weight_bytes()
        _set_submodule(target, name, new)

    if max(errors.values()) == 0.0:
        raise ValueError(f"{scheme.name} ({mode}) left every one of the {len(names)} weights exactly unchanged: "
                         "a quantization that changes nothing is not a result. Check that the scheme really "
                         "quantizes (format, granularity) and that the model is not already quantized.")
    return QuantResult(target, QuantReport(scheme.name, mode, tuple(names), before, after, errors, tuple(notes)))
