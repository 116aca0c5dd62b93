"""Perplexity with the GPTQ protocol, so numbers compare across tools and across runs.

The protocol (the one GPTQ, AWQ, SmoothQuant and most quantization papers report on WikiText-2):
  1. join the documents' text with ``"\\n\\n"`` and tokenize the whole string once;
  2. keep the first ``max_tokens`` tokens and cut them into ``n = max_tokens // seq_len``
     non-overlapping windows of ``seq_len`` tokens (the tail that does not fill a window is dropped);
  3. run each window on its own (no context carried over), score every next-token prediction inside
     it — ``seq_len - 1`` per window — by its negative log-likelihood ``-log p(x_t | x_<t)``;
  4. ``nll`` = the mean over all ``n·(seq_len-1)`` predictions, ``ppl = exp(nll)``.

Worked number: a model that spreads its probability uniformly over a vocabulary of V tokens has
``nll = log V`` and ``ppl = V`` whatever the text (49152 for SmolLM2's vocabulary), while
SmolLM2-135M with int8-row weights scores 12.79 on the first 4096 tokens of the lab text in
windows of 512 (``labkit eval``, December 2026).

Why every detail is fixed. Perplexity depends on the window length (longer context → lower ppl), on
which tokens are scored, and on tokenization: two runs that differ in any of them are not comparable,
and a "quantized" model that beats its own baseline by 13% was measured differently, not better.
Windows are independent and equal, so the mean over tokens equals the mean of the window means.

Logits are upcast to float32 before ``log_softmax``: a bf16 log-softmax over a 150k vocabulary loses
the small differences that 8-bit weight quantization makes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from ..data import tokenize_corpus  # noqa: F401 - part of this module's API
from .progress import progress


@dataclass(frozen=True)
class PerplexityResult:
    """``ppl = exp(nll)``; ``tokens`` = number of scored predictions = ``windows·(seq_len-1)``."""

    ppl: float
    nll: float
    tokens: int
    windows: int
    seq_len: int


def make_windows(ids: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Cut (n,) ids into (n // seq_len, seq_len) non-overlapping windows; the ragged tail is dropped."""
    if seq_len < 2:
        raise ValueError(f"seq_len must be ≥ 2 (one context token and one prediction), got {seq_len}")
    n_windows = ids.numel() // seq_len
    if n_windows == 0:
        raise ValueError(
            f"the text has {ids.numel()} tokens, fewer than one window of seq_len={seq_len}: use a longer "
            f"text, a larger --max-tokens, or a smaller --seq-len"
        )
    return ids[: n_windows * seq_len].view(n_windows, seq_len)


@torch.inference_mode()
def window_logprobs(model, windows: torch.Tensor, batch_size: int = 1, desc: str = "") -> Iterator[torch.Tensor]:
    """Yield float32 next-token log-probs, one (b, seq_len-1, vocab) block per batch of windows.

    Position t of a block is the distribution over token t+1 of the window.
    """
    device = next(model.parameters()).device
    for start in progress(range(0, windows.shape[0], batch_size), desc=desc):
        batch = windows[start : start + batch_size].to(device)
        logits = model(input_ids=batch).logits[:, :-1, :]
        yield torch.log_softmax(logits.float(), dim=-1).cpu()


def nll_from_logprobs(logprobs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token negative log-likelihood: logprobs (b, t, V), targets (b, t) → (b, t)."""
    return -logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def perplexity(
    model,
    tokenizer,
    texts: str | Sequence[str],
    seq_len: int = 512,
    max_tokens: int | None = 8192,
    batch_size: int = 1,
) -> PerplexityResult:
    """Perplexity of ``model`` on ``texts`` by the GPTQ protocol (see the module docstring)."""
    windows = make_windows(tokenize_corpus(texts, tokenizer, max_tokens), seq_len)
    return perplexity_of_windows(model, windows, batch_size=batch_size)


def perplexity_of_windows(model, windows: torch.Tensor, batch_size: int = 1) -> PerplexityResult:
    """Perplexity on pre-cut windows (n, seq_len): the mean NLL over all n·(seq_len-1) predictions."""
    total = 0.0
    count = 0
    start = 0
    for logprobs in window_logprobs(model, windows, batch_size, desc="perplexity"):
        b = logprobs.shape[0]
        targets = windows[start : start + b, 1:]
        nll = nll_from_logprobs(logprobs, targets)
        total += float(nll.double().sum())
        count += nll.numel()
        start += b
    mean = total / count
    return PerplexityResult(ppl=math.exp(mean), nll=mean, tokens=count, windows=windows.shape[0],
                            seq_len=windows.shape[1])
