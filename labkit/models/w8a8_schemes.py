"""The W8A8 and SmoothQuant schemes by short name, for ``quantize_model``, ``labkit eval/sweep/bench``.

    w8a8-int8          W8A8(fmt="int8")                 per-token int8 activations × per-row int8 weights
    w8a8-fp8           W8A8(fmt="fp8_e4m3")             the same in e4m3
    smoothquant-int8   SmoothQuant(fmt="int8", alpha=0.5)      calibrate, fold s, then w8a8-int8
    smoothquant-fp8    SmoothQuant(fmt="fp8_e4m3", alpha=0.5)  calibrate, fold s, then w8a8-fp8

Another α: the name ``smoothquant-int8@0.75`` (what ``labkit eval/sweep/bench --scheme`` take, and
the scheme's ``name`` when α ≠ 0.5), or ``with_alpha(get_scheme("smoothquant-int8"), 0.75)``. How they plug into ``labkit.nn.quantize_model``: a *handler* for ``W8A8`` swaps each
linear for ``labkit.nn.w8a8.W8A8Linear``; a *preparer* for ``SmoothQuant`` runs first on the model
copy — it tokenizes the calibration text with the model's own tokenizer, records per-channel
activation maxima (``labkit.models.calibration``) and folds the factors in
(``labkit.models.smoothing``). ``mode`` does not change W8A8: "fake" and "real" run the same 8-bit
arithmetic (there is no cheaper way to *simulate* an int8 × int8 matmul than to do it).

Calibration data: ``calibration="lab"`` (the lab's English text; any source ``load_ppl_text``
takes), ``n_windows`` windows of ``seq_len`` tokens at seeded offsets in the *second half* of the
token stream, so an evaluation on the first half (``--max-tokens`` up to ~2200 on the lab text)
never scores a token the calibration saw.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from ..nn.convert import register_handler, register_preparer
from ..nn.w8a8 import W8A8Linear, _w8a8_format
from ..schemes import RESOLVERS, Scheme, register_scheme
from .calibration import calibrate, calibration_windows
from .layer_maps import linear_names
from .smoothing import fold_smoothing_


@dataclass(frozen=True)
class W8A8(Scheme):
    """Weights per row and activations per token (dynamic), both in ``fmt`` ("int8" or "fp8_e4m3")."""

    fmt: str = "int8"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fmt", _w8a8_format(self.fmt).name)

    @property
    def name(self) -> str:
        return f"w8a8-{'fp8' if self.fmt == 'fp8_e4m3' else self.fmt}"


@dataclass(frozen=True)
class SmoothQuant(W8A8):
    """W8A8 after SmoothQuant smoothing with strength ``alpha`` ∈ [0, 1], calibrated on
    ``n_windows × seq_len`` tokens of ``calibration`` (seeded by ``seed``); ``scope`` as in
    ``labkit.models.smoothing``."""

    alpha: float = 0.5
    calibration: str = "lab"
    n_windows: int = 8
    seq_len: int = 256
    seed: int = 0
    scope: str = "all"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 <= self.alpha <= 1:
            raise ValueError(f"SmoothQuant alpha must be a number in [0, 1], got {self.alpha!r}")
        if self.n_windows < 1 or self.seq_len < 2:
            raise ValueError(f"need n_windows ≥ 1 and seq_len ≥ 2, got {self.n_windows}, {self.seq_len}")

    @property
    def name(self) -> str:
        base = f"smoothquant-{'fp8' if self.fmt == 'fp8_e4m3' else self.fmt}"
        return base if self.alpha == 0.5 else f"{base}@{self.alpha:g}"


def with_alpha(scheme: Scheme, alpha: float | None) -> Scheme:
    """``scheme`` with SmoothQuant strength ``alpha`` (None: unchanged). Non-SmoothQuant schemes have
    no α: giving one is an error rather than silently ignored."""
    if alpha is None:
        return scheme
    if not isinstance(scheme, SmoothQuant):
        raise ValueError(f"--alpha applies to SmoothQuant schemes (smoothquant-int8, smoothquant-fp8), "
                         f"not to {scheme.name}")
    return dataclasses.replace(scheme, alpha=float(alpha))


def _resolve(name: str) -> Scheme | None:
    """``smoothquant-int8@0.75`` → ``SmoothQuant("int8", alpha=0.75)``; None for other names."""
    base, sep, alpha = name.partition("@")
    if not sep or base not in ("smoothquant-int8", "smoothquant-fp8"):
        return None
    try:
        value = float(alpha)
    except ValueError:
        raise ValueError(f"{name!r}: the part after '@' must be α, a number in [0, 1] (e.g. {base}@0.75)") from None
    return SmoothQuant(fmt=base.split("-")[1], alpha=value)


RESOLVERS.append(_resolve)


@register_handler(W8A8)
def _w8a8_linear(linear: nn.Linear, scheme: W8A8, mode: str) -> nn.Module:
    return W8A8Linear.from_float(linear, scheme.fmt)


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
    from ..eval.data import load_ppl_text  # data files live with the evaluation; imported only here
    from ..eval.perplexity import tokenize_corpus

    ids = tokenize_corpus(load_ppl_text(scheme.calibration), _tokenizer_for(model))
    tail = ids[ids.numel() // 2 :] if ids.numel() // 2 >= scheme.seq_len else ids
    return calibration_windows(tail, scheme.n_windows, scheme.seq_len, seed=scheme.seed)


@register_preparer(SmoothQuant)
def _smooth(model: nn.Module, scheme: SmoothQuant) -> nn.Module:
    stats = calibrate(model, calibration_ids(model, scheme), names=linear_names(model))
    return fold_smoothing_(model, stats, alpha=scheme.alpha, scope=scheme.scope).model


for _s in (W8A8("int8"), W8A8("fp8_e4m3"), SmoothQuant("int8"), SmoothQuant("fp8_e4m3")):
    register_scheme(_s.name, _s)
del _s
