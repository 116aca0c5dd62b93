"""INT8 vs FP8 W8A8, with and without SmoothQuant: the α sweep and the side-by-side table.

Two studies that HW4 task 3.3 asks for, as functions a notebook or a test calls:

* ``alpha_sweep(model, windows, calibration, alphas, fmt)`` — perplexity of SmoothQuant W8A8 as the
  migration strength α goes from 0 (``s = 1/max|W_j|``: the weights' columns become flat, the
  activations keep their outlier channels) to 1 (``s = max|X_j|``: the activations become flat and
  all their range is pushed into the weights). The curve usually has a minimum in between; where it
  lies depends on the model and on the format: INT8's uniform grid suffers from activation
  outliers much more than FP8's exponent-spaced grid, so INT8 wants larger α.
* ``compare_formats(...)`` — one row per scheme name of ``labkit.schemes`` (default w8a8-int8,
  smoothquant-int8, w8a8-fp8, smoothquant-fp8): perplexity, KL divergence and top-1 agreement vs the baseline on the same
  windows, and optionally MMLU accuracy; ``to_markdown()`` gives the report table and
  ``labkit.viz.w8a8.plot_format_comparison`` the plot.

Both run labkit's one W8A8 pipeline — the schemes ``W8A8`` / ``SmoothQuant`` through
``labkit.nn.quantize_model`` (``labkit.models.w8a8_schemes.quantize_smoothed``) — with the
calibration statistic measured once and shared by every α and format, so the rows differ only by
what they claim to differ by. Every row is checked against the baseline: a perplexity equal
to the baseline's to the last digit means the quantization never ran, and raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import NoOpQuantizationError
from ..models.calibration import as_stats
from ..models.w8a8_schemes import quantize_smoothed
from ..schemes import W8A8, SmoothQuant, get_scheme, with_alpha
from .kld import kld, kld_reference
from .perplexity import nll_from_logprobs, perplexity_of_windows

SCHEMES = ("w8a8-int8", "smoothquant-int8", "w8a8-fp8", "smoothquant-fp8")


def _differs(name: str, value: float, baseline: float) -> None:
    if value == baseline:
        raise NoOpQuantizationError(f"{name}: perplexity {value!r} equals the baseline's to the last digit — "
                           "the quantization did not run (check the conversion report)")


@dataclass(frozen=True)
class AlphaSweep:
    """``ppl[i]`` is SmoothQuant W8A8 perplexity at ``alphas[i]``; ``unsmoothed_ppl`` plain W8A8."""

    fmt: str
    alphas: tuple[float, ...]
    ppl: tuple[float, ...]
    baseline_ppl: float
    unsmoothed_ppl: float
    tokens: int

    @property
    def best_alpha(self) -> float:
        return self.alphas[min(range(len(self.ppl)), key=self.ppl.__getitem__)]


def alpha_sweep(model, windows: torch.Tensor, calibration, alphas=(0.0, 0.25, 0.5, 0.75, 1.0), fmt: str = "int8",
                baseline_ppl: float | None = None) -> AlphaSweep:
    """Perplexity on ``windows: (n, seq_len)`` of W8A8 ``fmt`` after SmoothQuant at each α.

    ``calibration``: ``(n_cal, seq)`` token ids (ideally disjoint from ``windows``) or ``ActivationStats``.
    """
    if not alphas:
        raise ValueError("alphas is empty: give at least one α in [0, 1]")
    stats = as_stats(model, calibration)
    base = baseline_ppl if baseline_ppl is not None else perplexity_of_windows(model, windows).ppl
    plain_scheme = W8A8(fmt)
    plain = perplexity_of_windows(quantize_smoothed(model, plain_scheme).model, windows)
    _differs(plain_scheme.name, plain.ppl, base)
    ppl = []
    for a in alphas:
        scheme = SmoothQuant(plain_scheme.fmt, alpha=float(a))
        r = perplexity_of_windows(quantize_smoothed(model, scheme, stats).model, windows).ppl
        _differs(f"{scheme.name} α={a}", r, base)
        ppl.append(r)
    return AlphaSweep(plain_scheme.fmt, tuple(float(a) for a in alphas), tuple(ppl), base, plain.ppl, plain.tokens)


@dataclass(frozen=True)
class FormatRow:
    scheme: str
    fmt: str
    alpha: float | None
    ppl: float
    kld: float
    top1: float
    mmlu: float | None


@dataclass(frozen=True)
class FormatComparison:
    """Baseline numbers and one ``FormatRow`` per scheme, all on the same windows and questions."""

    baseline_ppl: float
    baseline_mmlu: float | None
    rows: tuple[FormatRow, ...]
    tokens: int
    mmlu_n: int

    def to_markdown(self) -> str:
        def pct(v):
            return "–" if v is None else f"{100 * v:.1f}"

        lines = ["| scheme | α | ppl | Δppl | KL (nats) | top-1 % | MMLU % |", "|---|---|---|---|---|---|---|",
                 f"| baseline (float) | – | {self.baseline_ppl:.3f} | – | 0 | 100.0 | {pct(self.baseline_mmlu)} |"]
        for r in self.rows:
            alpha = "–" if r.alpha is None else f"{r.alpha:g}"
            lines.append(f"| {r.scheme} | {alpha} | {r.ppl:.3f} | {100 * (r.ppl / self.baseline_ppl - 1):+.2f}% "
                         f"| {r.kld:.4f} | {100 * r.top1:.1f} | {pct(r.mmlu)} |")
        lines.append(f"\n{self.tokens} scored tokens; MMLU on {self.mmlu_n} questions.")
        return "\n".join(lines)


def compare_formats(model, tokenizer, windows: torch.Tensor, calibration, alpha: float = 0.5, mmlu=None, k: int = 5,
                    schemes=SCHEMES) -> FormatComparison:
    """INT8 and FP8 W8A8, plain and SmoothQuant (``alpha``), side by side on ``windows: (n, seq_len)``.

    ``schemes``: names or ``Scheme`` objects of W8A8 type; a SmoothQuant scheme gets strength ``alpha``.
    ``mmlu``: an ``MMLUData`` (e.g. ``labkit.data.load_mmlu("lab")``) or None to skip MMLU (it is
    the slow part: ~k+1 questions' worth of tokens per question).
    """
    from .mmlu import mmlu_accuracy

    resolved = [get_scheme(s) for s in schemes]  # unknown names fail with the list of known ones
    not_w8a8 = [s.name for s in resolved if not isinstance(s, W8A8)]
    if not_w8a8:
        raise ValueError(f"compare_formats compares W8A8 schemes ({', '.join(SCHEMES)}), got {not_w8a8}")
    stats = as_stats(model, calibration)
    ref = kld_reference(model, windows)
    # the baseline's own perplexity from the reference log-probs (no second forward pass)
    nll = sum(float(nll_from_logprobs(lp[None], w[None, 1:]).double().sum()) for lp, w in zip(ref.logprobs, windows))
    base_ppl = math.exp(nll / ref.tokens)

    def acc(m):
        return None if mmlu is None else mmlu_accuracy(m, tokenizer, mmlu.dev, mmlu.test, k=k).accuracy

    rows = []
    for name, scheme in zip(schemes, resolved):
        smooth = isinstance(scheme, SmoothQuant)
        scheme = with_alpha(scheme, alpha) if smooth else scheme
        q = quantize_smoothed(model, scheme, stats if smooth else None).model
        r = kld(q, ref)
        _differs(name, r.ppl, base_ppl)
        label = name if isinstance(name, str) else scheme.name
        rows.append(FormatRow(label, scheme.fmt, scheme.alpha if smooth else None, r.ppl, r.kld, r.top1, acc(q)))
    n = 0 if mmlu is None else sum(len(v) for v in mmlu.test.values())
    return FormatComparison(base_ppl, acc(model), tuple(rows), ref.tokens, n)
