"""quantize_model: swap a model's decoder linears for quantized ones and report what it cost.

    result = quantize_model(model, "int8-row", mode="real")
    result.model    # a NEW model (deep copy); ``model`` itself is untouched
    print(result.report)   # SmolLM2-135M, float32 (measured on the lab's 2-core CPU, November 2026):
    # int8-row (real): 210 layers replaced (model.layers.0.self_attn.q_proj, ...)
    #   weight bytes 405.0 MiB -> 101.8 MiB (3.98x smaller), worst relative error 0.01162 (...)

Which layers: every ``nn.Linear`` of the model — in Llama, Qwen2 and Qwen3 that is q/k/v/o of the
attention and gate/up/down of the MLP, the decoder linears that ``labkit.models.layer_maps`` lists
(a test checks the two agree) — except the output projection (``lm_head``) unless
``include_lm_head=True``. Embeddings are ``nn.Embedding`` and never touched. SmolLM2 *ties*
lm_head to the token embedding (one tensor); quantizing lm_head then builds a new layer from a
copy, so the embedding keeps its full-precision weight, and the copy's config says the two are no
longer tied.

How a layer is replaced depends on the scheme's *type*, looked up in ``HANDLERS`` (torchao's
handler registry): ``WeightOnly`` → ``QuantLinear.from_float``, ``W8A8`` (and ``SmoothQuant``) →
``W8A8Linear.from_float``. Another module adds its own scheme type with
``@register_handler(MyScheme)``. A scheme that must change the *model* first (SmoothQuant folds
calibrated factors into norms and weights) has a *preparer* (``register_preparer``), registered by
``labkit.models.w8a8_schemes`` — imported by ``import labkit.models``, so any model loaded through
labkit has it.

Your own quantized linear: ``quantizer=`` replaces the handler. It is any callable
``quantizer(linear: nn.Linear, scheme: Scheme, mode: str) -> nn.Module``; the module it returns must
take ``x: (..., in_features)`` and return ``(..., out_features)``, and must not change ``linear``.
The report measures whatever comes back, the same way for every module (``effective_weight``,
``stored_weight_bytes``): its weight is *probed* — ``Ŵ = (module(I) - module(0))ᵀ`` with ``I`` the
``(in, in)`` identity, i.e. what the forward really multiplies by (a forward bitwise equal to the
float layer's on the probe counts as ``Ŵ = W``) — and its bytes are its
parameters and buffers (a tensor named ``bias`` excluded, as the float side counts only
``linear.weight``). Worked example, a ``(2, 4)`` float32 linear (32 weight bytes) and a factory
that keeps int8 codes and one float32 scale per row::

    class MyInt8(nn.Module):
        def __init__(self, lin):
            super().__init__()
            w = lin.weight.detach()
            self.register_buffer("scale", w.abs().amax(dim=1, keepdim=True) / 127)   # (2, 1) float32
            self.register_buffer("codes", torch.round(w / self.scale).to(torch.int8))  # (2, 4) int8
        def forward(self, x):
            return x @ (self.codes.float() * self.scale).T

    report = quantize_model(net, "int8-row", quantizer=lambda lin, scheme, mode: MyInt8(lin)).report
    # report.bytes_before == 32, report.bytes_after == 8 + 8 (codes + scales): 2x here, ~4x on
    # real layers where the scales are few; report.errors[name] = ||W - Ŵ||_F / ||W||_F of the probe.

A factory that returns the float layer unchanged (or any module whose forward equals it) is caught
by the no-op guard below, whatever its class.

The report guards against the failures students hit: zero layers replaced, or a quantization that
changed no weight at all (a no-op reported as a result), is an error
(``labkit.errors.NoOpQuantizationError``); so are NaN/Inf weights (named by layer). The worst
relative error is ``max over layers ||W - Ŵ||_F / ||W||_F``.

``replace_linears`` is the swap loop itself (check all weights first, build, measure, install,
guard), for any engine's layer classes: ``labkit.engines.nanovllm`` uses it on nano-vllm's
``LinearBase`` layers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import NoOpQuantizationError
from ..schemes import W8A8, Baseline, Scheme, WeightOnly, get_scheme
from .quant_linear import QuantLinear, check_mode
from .w8a8 import W8A8Linear

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


@register_handler(W8A8)
def _w8a8(linear: nn.Linear, scheme: W8A8, mode: str) -> nn.Module:
    # "fake" and "real" run the same 8-bit arithmetic: there is no cheaper way to *simulate* an
    # int8 x int8 matmul than to do it
    return W8A8Linear.from_float(linear, scheme.fmt)


# Model-level preparation that must run before the linears are swapped (e.g. SmoothQuant folds
# calibrated factors into norms and weights): ``preparer(model, scheme) -> model``, may work in place
# on the copy it is given. Registered by the module that owns the scheme's model-level step.
Preparer = Callable[[nn.Module, Scheme], nn.Module]
PREPARERS: dict[type, Preparer] = {}


def register_preparer(scheme_type: type) -> Callable[[Preparer], Preparer]:
    """Decorator: ``preparer(model, scheme) -> model`` run by ``quantize_model`` before the handler."""
    def decorate(fn: Preparer) -> Preparer:
        PREPARERS[scheme_type] = fn
        return fn
    return decorate


def _lookup(table: dict, scheme: Scheme):
    return next((table[k] for k in type(scheme).__mro__ if k in table), None)


def _handler_for(scheme: Scheme) -> Handler:
    handler = _lookup(HANDLERS, scheme)
    if handler is None:
        raise TypeError(f"no handler registered for {type(scheme).__name__}; register one with "
                        f"@labkit.nn.convert.register_handler({type(scheme).__name__}) or pass quantizer=")
    return handler


def _preparer_for(scheme: Scheme) -> Preparer | None:
    prepare = _lookup(PREPARERS, scheme)
    if prepare is None and getattr(scheme, "needs_preparer", False):
        raise TypeError(f"{scheme.name} changes the model before its linears (calibration, smoothing) and that "
                        "step is registered by labkit.models: `import labkit.models` (load_model and tiny_model "
                        "do) before quantize_model")
    return prepare


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


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    """``model.<name> = module`` for a dotted ``name`` (``"model.layers.0.mlp.up_proj"``)."""
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def relative_error(w: torch.Tensor, w_hat: torch.Tensor) -> float:
    """``||w - w_hat||_F / ||w||_F`` in float32 (the absolute difference when ``w`` is all zeros)."""
    w = w.detach().to(torch.float32)
    norm = torch.linalg.vector_norm(w).item()
    diff = torch.linalg.vector_norm(w - w_hat.to(torch.float32)).item()
    return diff / norm if norm > 0 else diff


PROBE_ROWS = 1024  # identity rows per probe call: bounds the probe's memory at 1024 x in_features


@torch.no_grad()
def effective_weight(module: nn.Module, original: nn.Module) -> torch.Tensor:
    """The float32 ``(out, in)`` weight ``module`` multiplies by, ``module`` replacing ``original`` (which
    has ``weight: (out, in)``). labkit's own layers return their ``dequantized_weight()``; any other
    module is probed: ``Ŵ = (module(I) - module(0))ᵀ``, the identity fed in the weight's dtype and
    device in blocks of ``PROBE_ROWS`` rows. A module whose outputs on the probe are bitwise those of
    ``original`` multiplies by ``original.weight`` itself (``- module(0)`` would otherwise round a
    bias back imperfectly and hide a no-op). Raises ``ValueError`` if the output shape breaks the contract."""
    if isinstance(module, (QuantLinear, W8A8Linear)):
        return module.dequantized_weight()
    like = original.weight.detach()
    out_f, in_f = like.shape
    zero = torch.zeros(1, in_f, dtype=like.dtype, device=like.device)
    base = module(zero)
    if tuple(base.shape) != (1, out_f):
        raise ValueError(f"{type(module).__name__} replaces a linear ({in_f} -> {out_f}) but maps a (1, {in_f}) "
                         f"input to {tuple(base.shape)}: a quantized linear must map (..., {in_f}) to (..., {out_f})")
    same = callable(original) and torch.equal(base, original(zero))
    blocks = []
    for start in range(0, in_f, PROBE_ROWS):
        rows = min(PROBE_ROWS, in_f - start)
        eye = torch.zeros(rows, in_f, dtype=like.dtype, device=like.device)
        eye[torch.arange(rows), start + torch.arange(rows)] = 1
        out = module(eye)
        same = same and torch.equal(out, original(eye))
        blocks.append(out.float() - base.float())
    return like.float() if same else torch.cat(blocks).T


def stored_weight_bytes(module: nn.Module) -> int:
    """Bytes a replacement stores for its weight: ``module.weight_bytes()`` if it says, else every
    parameter and buffer except those named ``bias`` (codes, scales, zero points, ...)."""
    own = getattr(module, "weight_bytes", None)
    if callable(own):
        return int(own())
    tensors = list(module.named_parameters()) + list(module.named_buffers())
    return sum(t.numel() * t.element_size() for name, t in tensors
               if t is not None and name.rsplit(".", 1)[-1] != "bias")


def replace_linears(model: nn.Module, names: Sequence[str], build: Callable[[str, nn.Module], nn.Module], *,
                    scheme: str, mode: str, notes: Sequence[str] = (),
                    install: Callable[[str, nn.Module], nn.Module] | None = None) -> QuantReport:
    """Swap each layer ``names[i]`` of ``model`` (in place) for ``build(name, layer)`` and report it.

    ``layer`` has a ``weight: (out, in)``; ``install(name, new)`` (default: ``new`` itself) gives the
    module actually set into the model, e.g. a wrapper that needs engine context to run — the report
    measures ``new``. Every weight is checked for NaN/Inf *before* anything is replaced, so an error
    never leaves a half-converted model. Raises ``NoOpQuantizationError`` when no weight changed.
    """
    if not names:
        raise ValueError(f"no layer to quantize in {type(model).__name__}")
    for name in names:
        if not torch.isfinite(model.get_submodule(name).weight).all():
            raise ValueError(f"layer {name} has NaN or Inf weights; quantizing them would hide the problem — "
                             "check how the model was loaded or trained")
    before = after = 0
    errors: dict[str, float] = {}
    for name in names:
        layer = model.get_submodule(name)
        new = build(name, layer)
        if not isinstance(new, nn.Module):
            raise TypeError(f"the quantizer returned {type(new).__name__} for layer {name}; it must return an "
                            "nn.Module mapping (..., in_features) to (..., out_features)")
        errors[name] = relative_error(layer.weight, effective_weight(new, layer))
        before += layer.weight.numel() * layer.weight.element_size()
        after += stored_weight_bytes(new)
        set_submodule(model, name, new if install is None else install(name, new))
    if max(errors.values()) == 0.0:
        raise NoOpQuantizationError(
            f"{scheme} ({mode}) left every one of the {len(names)} weights exactly unchanged: a quantization that "
            "changes nothing is not a result. Check that the scheme really quantizes (format, granularity) and "
            "that the model is not already quantized.")
    return QuantReport(scheme, mode, tuple(names), before, after, errors, tuple(notes))


def quantize_model(model: nn.Module, scheme: str | Scheme, mode: str = "fake", *,
                   quantizer: Handler | None = None, include_lm_head: bool = False,
                   inplace: bool = False) -> QuantResult:
    """Replace the decoder linears of ``model`` by quantized modules; see the module docstring.

    ``scheme``: a short name (``"int8-row"``, ``"fp8-group128"``, ``"smoothquant-int8"``, ``"none"``) or a
    ``Scheme``; ``mode``: ``"fake"`` or ``"real"``; ``quantizer``: your own
    ``(linear, scheme, mode) -> nn.Module`` instead of labkit's handler (contract and worked example in
    the module docstring). Returns ``QuantResult(model, report)``; the model is a deep copy unless
    ``inplace=True``. ``"none"`` returns the (copied) model with an empty report.
    """
    scheme = get_scheme(scheme)
    check_mode(mode)
    if isinstance(scheme, Baseline):
        if quantizer is not None:
            raise ValueError("scheme 'none' quantizes nothing, so a quantizer would never run: pass the scheme your "
                             "quantizer implements (e.g. 'int8-row')")
        return QuantResult(model if inplace else copy.deepcopy(model), QuantReport(scheme.name, mode, (), 0, 0))
    if quantizer is not None and not callable(quantizer):
        raise TypeError(f"quantizer must be a callable (linear, scheme, mode) -> nn.Module, got {type(quantizer).__name__}")
    handler = quantizer if quantizer is not None else _handler_for(scheme)
    prepare = _preparer_for(scheme)
    target = model if inplace else copy.deepcopy(model)

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

    report = replace_linears(target, names, lambda name, linear: handler(linear, scheme, mode),
                             scheme=scheme.name, mode=mode, notes=notes)
    return QuantResult(target, report)
