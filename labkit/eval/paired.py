"""A quantized model against its baseline on the same tokens, with bootstrap intervals.

``labkit.eval.perplexity`` and ``labkit.eval.kld`` give one number per model. A comparison needs
to know whether a difference is larger than the noise of the text: perplexity on 1,000 tokens
moves by a few percent from one passage to the next, so "+0.4 % vs +0.7 %" may be no difference.

How: run the baseline once (``paired_reference``) and keep its per-token log-probabilities; run a
variant (``compare``) on exactly the same windows and keep, per scored token, its negative
log-likelihood and its KL(baseline ‖ variant). Then resample *blocks* of ``block`` consecutive
tokens with replacement (neighbouring tokens are correlated, so resampling single tokens would
make the interval too narrow) and recompute each statistic ``n_boot`` times; the interval is the
2.5 … 97.5 percentile range (95 %). The perplexity *change* is paired: the same resampled blocks
for baseline and variant, ``exp(mean(nll_q) − mean(nll_b)) − 1``, which cancels most of the text's
own difficulty and is much narrower than the two perplexities' intervals.

Worked reading: ``ppl change +0.41 % [−0.10, +0.95]`` contains 0, so on this text the variant is
not measurably worse; ``KL 3.0e-03 [2.6e-03, 3.5e-03]`` is a distance that is > 0 by construction.

No progress bar inside (a notebook shows one bar over a whole sweep); the model runs under
``torch.inference_mode``, one window at a time, logits upcast to float32 before ``log_softmax``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .kld import kl_divergence
from .perplexity import nll_from_logprobs


@dataclass(frozen=True)
class Interval:
    """A statistic and its 95 % bootstrap interval."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def fmt(self, spec: str = ".3f", scale: float = 1.0) -> str:
        """E.g. ``fmt(".2f", 100)`` → ``"+0.41 [-0.10, +0.95]"`` for a relative change."""
        v, lo, hi = (x * scale for x in (self.value, self.low, self.high))
        return f"{v:{spec}} [{lo:{spec}}, {hi:{spec}}]"


@dataclass(frozen=True)
class PairedReference:
    """The baseline on fixed windows ``(n, seq_len)``: per-window float32 log-probs ``(seq_len−1, V)``
    and per-token NLL ``(n, seq_len−1)``."""

    windows: torch.Tensor
    logprobs: list[torch.Tensor]
    nll: torch.Tensor

    @property
    def tokens(self) -> int:
        return self.nll.numel()


@dataclass(frozen=True)
class Comparison:
    """A variant against the baseline: ppl, its change (a fraction, paired), mean KL and top-1 agreement."""

    ppl: Interval
    ppl_change: Interval
    kld: Interval
    top1: float
    tokens: int


@torch.inference_mode()
def _logprobs(model, window: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    logits = model(input_ids=window[None].to(device)).logits[0, :-1]
    return torch.log_softmax(logits.float(), dim=-1).cpu()


def paired_reference(model, windows: torch.Tensor) -> PairedReference:
    """Run the baseline ``model`` once on ``windows: (n, seq_len)`` and keep what ``compare`` needs."""
    if windows.ndim != 2 or windows.shape[1] < 2:
        raise ValueError(f"windows must be (n, seq_len ≥ 2) token ids, got shape {tuple(windows.shape)}")
    lps = [_logprobs(model, w) for w in windows]
    nll = torch.stack([nll_from_logprobs(lp[None], w[None, 1:])[0] for lp, w in zip(lps, windows)])
    return PairedReference(windows, lps, nll.double())


def per_token(model, ref: PairedReference) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per scored token of ``ref.windows``: the model's NLL, KL(baseline ‖ model), top-1 agreement."""
    nll, kl, agree = [], [], []
    for w, p in zip(ref.windows, ref.logprobs):
        q = _logprobs(model, w)
        nll.append(nll_from_logprobs(q[None], w[None, 1:])[0])
        kl.append(kl_divergence(p, q))
        agree.append(p.argmax(-1) == q.argmax(-1))
    return torch.stack(nll).double(), torch.stack(kl).double(), torch.stack(agree)


def _block_means(x: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums and counts of consecutive ``block``-token pieces of each window (the last piece shorter)."""
    sums, counts = [], []
    for row in x:
        for c0 in range(0, row.numel(), block):
            piece = row[c0:c0 + block]
            sums.append(piece.sum())
            counts.append(piece.numel())
    return torch.stack(sums), torch.tensor(counts, dtype=torch.float64)


def _resample(n_blocks: int, n_boot: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, n_blocks, (n_boot, n_blocks), generator=gen)


def _interval(value: float, samples: torch.Tensor) -> Interval:
    lo, hi = torch.quantile(samples, torch.tensor([0.025, 0.975], dtype=samples.dtype)).tolist()
    return Interval(value, lo, hi)


def bootstrap_mean(x: torch.Tensor, block: int = 64, n_boot: int = 1000, seed: int = 0) -> Interval:
    """Mean of per-token values ``x: (n, t)`` with a 95 % block-bootstrap interval."""
    sums, counts = _block_means(x.double(), block)
    idx = _resample(sums.numel(), n_boot, seed)
    return _interval(float(x.double().mean()), sums[idx].sum(1) / counts[idx].sum(1))


def ppl_interval(nll: torch.Tensor, block: int = 64, n_boot: int = 1000, seed: int = 0) -> Interval:
    """Perplexity ``exp(mean nll)`` of per-token NLL ``(n, t)`` with its 95 % interval."""
    m = bootstrap_mean(nll, block, n_boot, seed)
    return Interval(math.exp(m.value), math.exp(m.low), math.exp(m.high))


def compare(model, ref: PairedReference, block: int = 64, n_boot: int = 1000, seed: int = 0) -> Comparison:
    """``model`` against the baseline of ``ref`` on the same tokens (see the module docstring)."""
    nll, kl, agree = per_token(model, ref)
    diff_sums, counts = _block_means(nll - ref.nll, block)
    idx = _resample(diff_sums.numel(), n_boot, seed)
    diff = float((nll - ref.nll).mean())
    change = _interval(math.expm1(diff), torch.expm1(diff_sums[idx].sum(1) / counts[idx].sum(1)))
    return Comparison(ppl=ppl_interval(nll, block, n_boot, seed), ppl_change=change,
                      kld=bootstrap_mean(kl, block, n_boot, seed), top1=float(agree.double().mean()),
                      tokens=nll.numel())
