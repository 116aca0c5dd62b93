"""SmoothQuant's model-level step for ``quantize_model``: calibrate on text, then fold the factors.

The schemes themselves (``W8A8``, ``SmoothQuant``, the names ``w8a8-int8``, ``smoothquant-fp8``,
``smoothquant-int8@0.75``) are data in ``labkit.schemes``; ``labkit.nn.convert`` swaps the linears
for ``W8A8Linear``. What needs a *model* lives here: a *preparer* for ``SmoothQuant`` that runs on
the copy ``quantize_model`` made, before its linears are swapped — it tokenizes the calibration text
with the model's own tokenizer, records per-channel activation maxima
(``labkit.models.calibration``) over the decoder linears of the layer map, and folds the factors in
(``labkit.models.smoothing``). ``import labkit.models`` imports this module, so every model loaded
through labkit can be smoothed.

Calibrating yourself — statistics measured once and shared by every α and format, as an α sweep
does — is ``quantize_smoothed(model, scheme, stats)``: the same two steps (fold with
``labkit.models.smoothing``, then ``quantize_model`` with the scheme's ``W8A8`` handler), with your
``ActivationStats`` instead of the scheme's text. There is no other W8A8 path in labkit.

Calibration data: ``calibration="lab"`` (the lab's English text; any source
``labkit.data.load_ppl_text`` takes), ``n_windows`` windows of ``seq_len`` tokens at seeded offsets
in the *second half* of the token stream, so an evaluation on the first half (``--max-tokens`` up to
~2200 on the lab text) never scores a token the calibration saw.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..data import load_ppl_text, tokenize_corpus
from ..nn.convert import QuantResult, quantize_model, register_preparer
from ..schemes import W8A8, Scheme, SmoothQuant, get_scheme, with_alpha  # noqa: F401 - with_alpha re-exported
from .calibration import ActivationStats, calibrate, calibration_windows
from .layer_maps import LAYER_MAPS, linear_names
from .smoothing import fold_smoothing_, smooth_model


def _tokenizer_for(model: nn.Module):
    from transformers import AutoTokenizer

    cfg = model.config
    path = getattr(cfg, "_name_or_path", "") or ""
    if path:
        try:
            return AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError):
            pass
    from .tiny import tiny_config, tiny_tokenizer

    if cfg.model_type in LAYER_MAPS and cfg.vocab_size == tiny_config(cfg.model_type).vocab_size:
        return tiny_tokenizer()
    raise ValueError(
        f"SmoothQuant calibrates on text tokenized by the model's own tokenizer, but none was found for "
        f"{path or type(model).__name__!r}. Load the model with labkit.models.load_model (a folder with "
        "tokenizer files), or calibrate yourself: stats = labkit.models.calibration.calibrate(model, token_ids), "
        "then labkit.models.w8a8_schemes.quantize_smoothed(model, scheme, stats)."
    )


def calibration_ids(model: nn.Module, scheme: SmoothQuant) -> torch.Tensor:
    """The ``(n_windows, seq_len)`` calibration token ids ``scheme`` asks for (see module docstring)."""
    ids = tokenize_corpus(load_ppl_text(scheme.calibration), _tokenizer_for(model))
    tail = ids[ids.numel() // 2 :] if ids.numel() // 2 >= scheme.seq_len else ids
    return calibration_windows(tail, scheme.n_windows, scheme.seq_len, seed=scheme.seed)


@register_preparer(SmoothQuant)
def _smooth(model: nn.Module, scheme: SmoothQuant) -> nn.Module:
    stats = calibrate(model, calibration_ids(model, scheme), names=linear_names(model))
    return fold_smoothing_(model, stats, alpha=scheme.alpha, scope=scheme.scope).model



def quantize_smoothed(model: nn.Module, scheme: str | Scheme, stats: ActivationStats | None = None, *,
                      mode: str = "fake") -> QuantResult:
    """``quantize_model(model, scheme)`` for a W8A8 or SmoothQuant ``scheme`` with SmoothQuant's
    statistics given (``stats`` from ``calibrate`` on ``model``) instead of measured on the scheme's text.

    A ``W8A8`` scheme ignores ``stats``; a ``SmoothQuant`` one folds its ``alpha``/``scope`` with them
    into a copy, then swaps the linears for ``W8A8Linear``. ``model`` is never changed.
    """
    scheme = get_scheme(scheme)
    if not isinstance(scheme, W8A8):
        raise ValueError(f"quantize_smoothed takes W8A8 or SmoothQuant schemes, got {scheme.name}")
    if not isinstance(scheme, SmoothQuant):
        return quantize_model(model, scheme, mode)
    if stats is None:
        raise ValueError(f"{scheme.name} needs calibration statistics: stats = "
                         "labkit.models.calibration.calibrate(model, token_ids) (or quantize_model(model, scheme), "
                         "which calibrates on the scheme's text)")
    smoothed = smooth_model(model, stats, alpha=scheme.alpha, scope=scheme.scope).model
    result = quantize_model(smoothed, W8A8(scheme.fmt), mode, inplace=True)
    return QuantResult(result.model, dataclasses.replace(result.report, scheme=scheme.name))
