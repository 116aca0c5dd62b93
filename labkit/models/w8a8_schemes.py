"""SmoothQuant's model-level step for ``quantize_model``: calibrate on text, then fold the factors.

The schemes themselves (``W8A8``, ``SmoothQuant``, the names ``w8a8-int8``, ``smoothquant-fp8``,
``smoothquant-int8@0.75``) are data in ``labkit.schemes``; ``labkit.nn.convert`` swaps the linears
for ``W8A8Linear``. What needs a *model* lives here: a *preparer* for ``SmoothQuant`` that runs on
the copy ``quantize_model`` made, before its linears are swapped — it tokenizes the calibration text
with the model's own tokenizer, records per-channel activation maxima
(``labkit.models.calibration``) over the decoder linears of the layer map, and folds the factors in
(``labkit.models.smoothing``). ``import labkit.models`` imports this module, so every model loaded
through labkit can be smoothed.

Calibration data: ``calibration="lab"`` (the lab's English text; any source
``labkit.data.load_ppl_text`` takes), ``n_windows`` windows of ``seq_len`` tokens at seeded offsets
in the *second half* of the token stream, so an evaluation on the first half (``--max-tokens`` up to
~2200 on the lab text) never scores a token the calibration saw.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import load_ppl_text, tokenize_corpus
from ..nn.convert import register_preparer
from ..schemes import SmoothQuant, W8A8, with_alpha  # noqa: F401 - re-exported for older imports
from .calibration import calibrate, calibration_windows
from .layer_maps import linear_names
from .smoothing import fold_smoothing_


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

    if cfg.model_type in ("llama", "qwen2", "qwen3") and cfg.vocab_size == tiny_config(cfg.model_type).vocab_size:
        return tiny_tokenizer()
    raise ValueError(
        f"SmoothQuant calibrates on text tokenized by the model's own tokenizer, but none was found for "
        f"{path or type(model).__name__!r}. Load the model with labkit.models.load_model (a folder with "
        "tokenizer files), or calibrate yourself: labkit.models.w8a8.quantize_w8a8(model, fmt, alpha=α, "
        "calibration=token_ids)."
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

