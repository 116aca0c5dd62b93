"""Run evaluations of quantized variants of one model against its baseline, measured the same way.

``Evaluator`` owns the baseline: the model as loaded, its tokenizer, the perplexity windows, the MMLU
questions and — computed once, on first need — the baseline's log-probabilities for the KL divergence
and its logits on a short probe. ``evaluator.run(scheme, mode, tasks)`` quantizes a *copy* of the
baseline (``labkit.nn.quantize_model``; the baseline is never touched), runs the tasks on exactly the
same tokens, and returns one flat result row per task — what ``labkit eval`` prints as JSON and
``labkit sweep`` appends to its JSONL.

The guard against results that are not results. Two students reported SmoothQuant rows identical to
the bf16 baseline "to the last digit": the quantization never ran. Here, before any task runs, the
quantized model's logits on a probe (the first window, up to 64 tokens) are compared with the
baseline's; bitwise equality raises ``labkit.errors.NoOpQuantizationError``. A perplexity exactly equal to the
baseline's is refused the same way. ``quantize_model`` itself also refuses to change no weight.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from ..data import MMLUData, load_mmlu, load_ppl_text, tokenize_corpus
from ..errors import NoOpQuantizationError
from .kld import KLDReference, kld, kld_reference
from .mmlu import mmlu_accuracy
from .perplexity import make_windows, perplexity_of_windows

TASKS = ("ppl", "kld", "mmlu")


@dataclass
class EvalConfig:
    """Everything that fixes *how* a number is measured; two rows compare only if these agree."""

    model: str = "default"
    text: str = "lab"              # "lab", "wikitext2" or a file path (ppl and kld)
    mmlu: str = "lab"              # "lab", "cais/mmlu" or a folder in the original csv layout
    seq_len: int = 512
    max_tokens: int | None = 8192
    subjects: Sequence[str] | None = None
    per_subject: int | None = None
    shots: int = 5
    mmlu_scoring: str = "letter"   # "letter" (the MMLU protocol) or "cloze" (answer texts; small models)
    batch_size: int = 1
    dtype: str = "float32"
    device: str = "cpu"
    include_lm_head: bool = False


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; known: {', '.join(DTYPES)}")
    return DTYPES[name]


@dataclass
class Evaluator:
    """A loaded baseline model plus the fixed evaluation data; ``run`` measures variants of it."""

    config: EvalConfig
    model: Any = None
    tokenizer: Any = None
    _windows: torch.Tensor | None = None
    _mmlu: MMLUData | None = None
    _reference: KLDReference | None = None
    _probe_logits: torch.Tensor | None = None
    baseline: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        if self.model is None:
            from ..models.loader import load_model

            lm = load_model(self.config.model, dtype=_dtype(self.config.dtype), device=self.config.device)
            self.model, self.tokenizer = lm.model, lm.tokenizer

    # ---- fixed data, built once -------------------------------------------------------------
    @property
    def windows(self) -> torch.Tensor:
        if self._windows is None:
            ids = tokenize_corpus(load_ppl_text(self.config.text), self.tokenizer, self.config.max_tokens)
            self._windows = make_windows(ids, self.config.seq_len)
        return self._windows

    @property
    def mmlu_data(self) -> MMLUData:
        if self._mmlu is None:
            self._mmlu = load_mmlu(self.config.mmlu).limited(self.config.subjects, self.config.per_subject)
        return self._mmlu

    @property
    def reference(self) -> KLDReference:
        if self._reference is None:
            self._reference = kld_reference(self.model, self.windows, self.config.batch_size)
        return self._reference

    @torch.inference_mode()
    def _probe(self, model) -> torch.Tensor:
        ids = self.windows[:1, :64].to(next(model.parameters()).device)
        return model(input_ids=ids).logits.float().cpu()

    # ---- measuring -------------------------------------------------------------------------
    def quantize(self, scheme: str, mode: str):
        """A quantized copy of the baseline and its report; raises if its outputs equal the baseline's."""
        from ..nn import quantize_model

        result = quantize_model(self.model, scheme, mode, include_lm_head=self.config.include_lm_head)
        if self._probe_logits is None:
            self._probe_logits = self._probe(self.model)
        if torch.equal(self._probe(result.model), self._probe_logits):
            raise NoOpQuantizationError(
                f"{scheme} ({mode}) gives logits bitwise equal to the baseline's on the probe window: the "
                f"quantization did not reach the forward pass. Check that the quantized linears replaced the "
                f"model's own modules ({result.report.n_layers} reported replaced)."
            )
        return result.model, result.report

    def _task(self, model, task: str) -> dict:
        c = self.config
        if task == "ppl":
            r = perplexity_of_windows(model, self.windows, c.batch_size)
            return {"ppl": r.ppl, "nll": r.nll, "tokens": r.tokens, "windows": r.windows}
        if task == "kld":
            r = kld(model, self.reference, c.batch_size)
            return {"kld": r.kld, "top1": r.top1, "kld_max": r.kld_max, "ppl": r.ppl, "tokens": r.tokens}
        if task == "mmlu":
            d = self.mmlu_data
            r = mmlu_accuracy(model, self.tokenizer, d.dev, d.test, k=c.shots, scoring=c.mmlu_scoring)
            if c.mmlu_scoring == "letter" and c.model == "default" and model is self.model:
                print("[labkit] note: with letter scoring the 135M default model answers at chance (~25%, "
                      "see data/README.md); --mmlu-scoring cloze shows what it knows (~81% on the lab set)",
                      file=sys.stderr)
            return {"accuracy": r.accuracy, "correct": r.correct, "n": r.n, "predictions": "".join(r.predictions),
                    "per_subject": {s: {"accuracy": v.accuracy, "n": v.n} for s, v in r.per_subject.items()}}
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")

    def run(self, scheme: str, mode: str, tasks: Sequence[str]) -> list[dict]:
        """Evaluate ``scheme`` in ``mode`` ("none" = the baseline itself) on ``tasks``; one row per task."""
        for task in tasks:
            if task not in TASKS:
                raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
        t0 = time.perf_counter()
        if scheme == "none":
            model, report = self.model, None
        else:
            model, report = self.quantize(scheme, mode)
        quant_seconds = time.perf_counter() - t0
        rows = []
        for task in tasks:
            t1 = time.perf_counter()
            metrics = self._task(model, task)
            if scheme == "none":
                self.baseline[task] = metrics
            elif task == "ppl" and "ppl" in self.baseline.get("ppl", {}) and metrics["ppl"] == self.baseline["ppl"]["ppl"]:
                raise NoOpQuantizationError(f"{scheme} ({mode}) has exactly the baseline's perplexity "
                                            f"{metrics['ppl']!r}: the quantization did not run")
            rows.append(self._row(scheme, mode, task, metrics, report, quant_seconds, time.perf_counter() - t1))
        return rows

    def _row(self, scheme, mode, task, metrics, report, quant_seconds, seconds) -> dict:
        c = self.config
        row: dict[str, Any] = {"model": c.model, "scheme": scheme, "mode": mode if scheme != "none" else "none",
                               "task": task}
        row.update(metrics)
        if task in ("ppl", "kld"):
            row.update({"data": c.text, "seq_len": c.seq_len, "max_tokens": c.max_tokens})
        else:
            row.update({"data": c.mmlu, "shots": c.shots, "scoring": c.mmlu_scoring})
        row.update({"dtype": c.dtype, "device": c.device, "seconds": round(seconds, 3)})
        if report is not None:
            row.update({"layers": report.n_layers, "weight_bytes_before": report.bytes_before,
                        "weight_bytes_after": report.bytes_after, "worst_rel_error": report.worst_error,
                        "quantize_seconds": round(quant_seconds, 3)})
        return row
