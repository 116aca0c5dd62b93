"""``labkit eval``: one model, one scheme, one mode, one task → one JSON object on stdout.

    labkit eval --model default --scheme int8-row --mode fake --task ppl \\
                --data-file FILE --seq-len 512 --max-tokens 8192 --json

prints, on stdout and nothing else, e.g.
    {"model": "default", "scheme": "int8-row", "mode": "fake", "task": "ppl", "ppl": 12.81, "tokens": 8176, ...}

``--task ppl`` gives ``ppl``, ``nll``, ``tokens`` (scored predictions); ``--task kld`` gives ``kld``
(mean KL(baseline || quantized), nats) and ``top1`` (agreement); ``--task mmlu`` gives ``accuracy``,
``n`` and ``per_subject``. Quantized rows also carry the weight bytes before/after and the worst
relative weight error. ``--scheme none`` is the unquantized baseline. Progress bars and messages go
to stderr. Without ``--json`` a short human-readable summary is printed instead.

Exit codes (``labkit.cli_common.EXIT_CODES``, the same for every subcommand): 0 success, 2 bad
arguments or missing model/data (with a message saying what to do), 3 a quantization that changed
nothing (refused as a result). The model/runtime options (--model, --device, --dtype,
--include-lm-head, --threads, --seed) are ``labkit.cli_common.add_model_options``.
"""

from __future__ import annotations

import argparse
import json

from ..cli_common import add_model_options, resolve_runtime
from .runner import TASKS, EvalConfig


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``labkit eval`` and ``labkit sweep``: model and runtime (``cli_common``), data
    and protocol."""
    add_model_options(parser, include_lm_head=False)
    parser.add_argument("--data-file", default=None,
                        help="text file for ppl/kld (default: the lab's own English text in data/text/)")
    parser.add_argument("--text", default="lab",
                        help="text source for ppl/kld when --data-file is not given: lab or wikitext2 (needs "
                             "the `datasets` package and network)")
    parser.add_argument("--mmlu", default="lab",
                        help="MMLU source: lab (data/mmlu), cais/mmlu (needs `datasets` and network) or a folder "
                             "with dev/{subject}_dev.csv and test/{subject}_test.csv")
    parser.add_argument("--subjects", default=None, help="comma-separated MMLU subjects (default: all)")
    parser.add_argument("--per-subject", type=int, default=None, help="at most this many test questions per subject")
    parser.add_argument("--shots", type=int, default=5, help="MMLU few-shot examples (default 5)")
    parser.add_argument("--mmlu-scoring", default="letter", choices=["letter", "cloze"],
                        help="letter: argmax over ' A'..' D' (the MMLU protocol); cloze: the answer text with the "
                             "highest log-likelihood (for small models such as the default one, see data/README.md)")
    parser.add_argument("--seq-len", type=int, default=512, help="perplexity window length (default 512)")
    parser.add_argument("--max-tokens", type=int, default=8192, help="use the first N tokens of the text (default 8192)")
    parser.add_argument("--batch-size", type=int, default=1, help="perplexity windows per forward pass")


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """The ``EvalConfig`` the options describe; resolves device/dtype "auto" and applies threads/seed."""
    resolve_runtime(args)
    return EvalConfig(
        model=args.model, text=args.data_file or args.text, mmlu=args.mmlu, seq_len=args.seq_len,
        max_tokens=args.max_tokens, subjects=args.subjects.split(",") if args.subjects else None,
        per_subject=args.per_subject, shots=args.shots, mmlu_scoring=args.mmlu_scoring,
        batch_size=args.batch_size, dtype=args.dtype,
        device=args.device, include_lm_head=args.include_lm_head,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheme", default="none", help="quantization scheme, e.g. int8-row, fp8-group128; none = baseline")
    parser.add_argument("--mode", default="fake", choices=["fake", "real"],
                        help="fake: quantize-dequantize in the model's dtype; real: 8-bit weights + scales in memory")
    parser.add_argument("--task", default="ppl", choices=list(TASKS), help="ppl, kld or mmlu")
    parser.add_argument("--alpha", type=float, default=None,
                        help="SmoothQuant migration strength in [0, 1] for smoothquant-* schemes (default 0.5)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    add_common_arguments(parser)


def _summary(row: dict) -> str:
    head = f"{row['model']} | {row['scheme']} ({row['mode']}) | {row['task']}: "
    if row["task"] == "ppl":
        body = f"ppl {row['ppl']:.4f} over {row['tokens']} tokens"
    elif row["task"] == "kld":
        body = f"KL {row['kld']:.3e} nats, top-1 agreement {row['top1']:.2%}, ppl {row['ppl']:.4f} ({row['tokens']} tokens)"
    else:
        body = f"accuracy {row['accuracy']:.2%} ({row['correct']}/{row['n']})"
        body += "".join(f"\n    {s}: {v['accuracy']:.2%} of {v['n']}" for s, v in row["per_subject"].items())
    if "weight_bytes_after" in row:
        body += (f"\n  weights {row['weight_bytes_before'] / 2**20:.1f} MiB -> {row['weight_bytes_after'] / 2**20:.1f}"
                 f" MiB in {row['layers']} layers, worst relative weight error {row['worst_rel_error']:.3g}")
    return head + body


def run(args: argparse.Namespace) -> int:
    """Errors propagate; ``labkit.cli.main`` maps them to exit codes (``labkit.cli_common``)."""
    from .runner import Evaluator

    if args.scheme != "none":
        from ..schemes import get_scheme, with_alpha

        scheme = get_scheme(args.scheme)  # unknown name → the list of known ones, before loading anything
        if args.alpha is not None:
            args.scheme = with_alpha(scheme, args.alpha).name
    elif args.alpha is not None:
        raise ValueError("--alpha applies to SmoothQuant schemes (smoothquant-int8, smoothquant-fp8), not to none")
    evaluator = Evaluator(config_from_args(args))
    row = evaluator.run(args.scheme, args.mode, [args.task])[0]
    print(json.dumps(row) if args.json else _summary(row), flush=True)
    return 0
