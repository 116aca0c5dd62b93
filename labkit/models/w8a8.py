"""W8A8 and SmoothQuant with torchao, next to labkit's own, and the guards every W8A8 path shares.

labkit's own W8A8 is the schemes ``w8a8-*`` / ``smoothquant-*`` through ``labkit.nn.quantize_model``
(``labkit.models.w8a8_schemes``). This module compares it with torchao, all pure (the input model
is deep-copied, never changed):

* ``torchao_smoothquant_int8(model, calibration, alpha)`` — torchao 0.18's own recipe:
  ``quantize_(m, SmoothQuantConfig(base_config=Int8DynamicActivationInt8WeightConfig(),
  step="prepare", alpha=α))``, run the calibration windows, then the same config with
  ``step="convert"``. torchao smooths *each* linear with its own ``s`` and keeps ``1/s`` as a
  run-time multiplication of the activation (``act_pre_scale``); labkit folds one shared ``s`` per
  norm into the weights. Both are SmoothQuant; the test suite checks they agree within 1 % ppl.
* ``torchao_fp8(model, alpha, calibration)`` — GPU only: labkit folding, then torchao's
  ``Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())``. torchao 0.16–0.18 refuse
  ``SmoothQuantConfig`` with a Float8 base config (the Float8 weight has no activation pre-scale),
  which is why the folding lives in labkit.

Guards, because a student report once showed SmoothQuant rows identical to BF16 to the last digit:
every path counts the linears that now quantize their activations (``count_act_quantized``) and
fails on zero, and it runs a short probe through the baseline and the result and fails if the
logits did not move (``labkit.errors.NoOpQuantizationError``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import NoOpQuantizationError
from ..nn.w8a8 import W8A8Linear
from .calibration import as_stats
from .layer_maps import linear_names
from .smoothing import smooth_model


@dataclass(frozen=True)
class W8A8Report:
    """What a W8A8 conversion did. ``act_quantized``: linears that now quantize their inputs;
    ``alpha``: SmoothQuant strength (None = no smoothing); ``probe_logit_change``: max |Δ logit| of
    the result vs the input model on a short probe (> 0, or the conversion raised)."""

    backend: str
    fmt: str
    alpha: float | None
    act_quantized: int
    calibration_tokens: int
    probe_logit_change: float


@dataclass(frozen=True)
class W8A8Result:
    model: nn.Module
    report: W8A8Report


def count_act_quantized(model: nn.Module) -> int:
    """Linears that quantize their activations: labkit ``W8A8Linear`` modules, and ``nn.Linear``
    whose weight is a torchao tensor subclass carrying activation-quantization settings."""
    n = 0
    for m in model.modules():
        if isinstance(m, W8A8Linear):
            n += 1
        elif isinstance(m, nn.Linear) and getattr(m.weight, "act_quant_kwargs", None) is not None:
            n += 1
    return n


def _smoothed_copy(model, calibration, alpha: float | None, scope: str):
    """A copy of ``model``, SmoothQuant-folded when ``alpha`` is set; also the calibration token count."""
    if alpha is None:
        return copy.deepcopy(model), 0
    stats = as_stats(model, calibration)
    return smooth_model(model, stats, alpha=alpha, scope=scope).model, stats.tokens


@torch.no_grad()
def _guard(backend: str, base: nn.Module, new: nn.Module, probe: torch.Tensor | None) -> float:
    n = count_act_quantized(new)
    if n == 0:
        raise NoOpQuantizationError(
            f"{backend}: after conversion no linear quantizes its activations — the quantization did not run. "
            "Check the module filter (decoder linears q/k/v/o, gate/up/down) and that convert was called."
        )
    if probe is None:
        return float("nan")
    device = next(base.parameters()).device
    ids = probe.reshape(1, -1)[:, :32].to(device)
    change = float((new(ids).logits.float() - base(ids).logits.float()).abs().max())
    if not change > 0:
        raise NoOpQuantizationError(f"{backend}: the converted model gives exactly the baseline's logits; nothing was quantized")
    return change


def _probe(calibration) -> torch.Tensor | None:
    return calibration if isinstance(calibration, torch.Tensor) else None


def _decoder_filter(model: nn.Module):
    wanted = set(linear_names(model))
    return lambda module, fqn: isinstance(module, nn.Linear) and fqn in wanted


@torch.no_grad()
def torchao_smoothquant_int8(model: nn.Module, calibration: torch.Tensor, alpha: float | None = 0.5) -> W8A8Result:
    """torchao's SmoothQuant INT8 W8A8 (prepare → calibrate → convert) on the decoder linears.

    ``calibration``: ``(n, seq)`` token ids, run one window at a time. ``alpha=None`` is torchao's
    "no smoothing" (plain dynamic INT8 W8A8). Uses the running-absmax observer (O(in) memory per
    linear instead of storing every calibration input).
    """
    from torchao.prototype.smoothquant import SmoothQuantConfig
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    calibration = torch.as_tensor(calibration)
    if calibration.ndim != 2:
        raise ValueError(f"calibration must be token ids (n, seq), got shape {tuple(calibration.shape)}")
    new = copy.deepcopy(model)
    keep = _decoder_filter(new)

    def config(step: str):
        return SmoothQuantConfig(base_config=Int8DynamicActivationInt8WeightConfig(), step=step, alpha=alpha,
                                 use_running_absmax=True)

    quantize_(new, config("prepare"), filter_fn=keep)
    device = next(new.parameters()).device
    runner = new.get_decoder() if hasattr(new, "get_decoder") else new  # the lm_head is not observed
    for row in calibration:
        runner(input_ids=row[None].to(device))
    observed = set(linear_names(new))
    quantize_(new, config("convert"), filter_fn=lambda m, fqn: fqn in observed)
    change = _guard("torchao", model, new, calibration)
    return W8A8Result(new, W8A8Report("torchao", "int8", alpha, count_act_quantized(new), int(calibration.numel()),
                                      change))


@torch.no_grad()
def torchao_fp8(model: nn.Module, alpha: float | None = 0.5, calibration=None, scope: str = "all") -> W8A8Result:
    """FP8 W8A8 with torchao on CUDA SM ≥ 8.9: labkit SmoothQuant folding (if ``alpha``), then
    ``Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())`` on the decoder linears."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    device = next(model.parameters()).device
    if device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 9):
        raise RuntimeError(
            f"torchao's FP8 dynamic-activation kernels need a CUDA GPU with compute capability ≥ 8.9 (Ada, Hopper); "
            f"the model is on {device}. On CPU use labkit's FP8 W8A8: quantize_model(model, 'smoothquant-fp8') or quantize_smoothed(model, SmoothQuant('fp8_e4m3', alpha=α), stats)."
        )
    new, tokens = _smoothed_copy(model, calibration, alpha, scope)
    quantize_(new, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()), filter_fn=_decoder_filter(new))
    change = _guard("torchao", model, new, _probe(calibration))
    return W8A8Result(new, W8A8Report("torchao", "fp8_e4m3", alpha, count_act_quantized(new), tokens, change))
