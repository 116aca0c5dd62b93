"""``labkit sweep``: a grid of schemes × modes × tasks on one model, as a report-ready table and plots.

    labkit sweep --model default --schemes int8-tensor,int8-row,fp8-tensor,fp8-row \\
                 --modes fake,real --tasks ppl,kld --out results/sweep

The baseline (``none``) is always measured first, in the same process and on the same tokens, so
every row compares with it. Writes into ``--out``:
  * ``results.jsonl`` — one JSON row per (scheme, mode, task), *appended* (earlier runs are kept);
  * ``table.md`` and ``table.csv`` — this run: one line per (scheme, mode) with ppl and its change
    against the baseline, KL and top-1 agreement, MMLU accuracy, weight MiB and worst weight error;
  * ``ppl.png`` and ``kld.png`` — perplexity and KL divergence per scheme, fake and real side by side
    (KL on a log scale: 8-bit schemes differ by orders of magnitude there), drawn by
    ``labkit.viz.sweep_plots`` — the module ``labkit sweep`` runs, since plots live in ``labkit.viz``
    and nothing in ``labkit.eval`` imports them.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .cli import add_common_arguments, config_from_args
from .runner import TASKS, EvalConfig

DEFAULT_SCHEMES = ("int8-tensor", "int8-row", "int8-group128", "fp8-tensor", "fp8-row", "fp8-group128")

COLUMNS = ("scheme", "mode", "ppl", "ppl_change_pct", "kld", "top1", "mmlu_accuracy", "mmlu_n",
           "weight_mib", "compression", "worst_rel_error")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--schemes", default=",".join(DEFAULT_SCHEMES),
                        help=f"comma-separated schemes (default {','.join(DEFAULT_SCHEMES)}); the baseline is always run")
    parser.add_argument("--modes", default="fake,real", help="comma-separated modes: fake, real (default both)")
    parser.add_argument("--tasks", default="ppl,kld", help="comma-separated tasks among ppl, kld, mmlu (default ppl,kld)")
    parser.add_argument("--out", default="results/sweep", help="output folder (default results/sweep)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_common_arguments(parser)


def summarize(rows: list[dict]) -> list[dict]:
    """Merge per-task rows into one line per (scheme, mode), in first-seen order; baseline first."""
    lines: dict[tuple[str, str], dict] = {}
    base_ppl = next((r["ppl"] for r in rows if r["scheme"] == "none" and r["task"] == "ppl"), None)
    for r in rows:
        line = lines.setdefault((r["scheme"], r["mode"]), {"scheme": r["scheme"], "mode": r["mode"]})
        if r["task"] == "ppl" or (r["task"] == "kld" and "ppl" not in line):
            line["ppl"] = r["ppl"]
        if r["task"] == "kld":
            line["kld"], line["top1"] = r["kld"], r["top1"]
        if r["task"] == "mmlu":
            line["mmlu_accuracy"], line["mmlu_n"] = r["accuracy"], r["n"]
        if "weight_bytes_after" in r:
            line["weight_mib"] = r["weight_bytes_after"] / 2**20
            line["compression"] = r["weight_bytes_before"] / r["weight_bytes_after"]
            line["worst_rel_error"] = r["worst_rel_error"]
    if base_ppl is None:  # ppl only from the kld task
        base_ppl = lines.get(("none", "none"), {}).get("ppl")
    for line in lines.values():
        if base_ppl and "ppl" in line:
            line["ppl_change_pct"] = 100.0 * (line["ppl"] / base_ppl - 1.0)
    return list(lines.values())


def _fmt(key: str, value) -> str:
    if value is None:
        return ""
    if key == "kld":
        return f"{value:.3e}"
    if key in ("top1", "mmlu_accuracy"):
        return f"{100 * value:.2f}%"
    if key == "ppl_change_pct":
        return f"{value:+.2f}%"
    if key in ("ppl", "weight_mib", "compression"):
        return f"{value:.3f}" if key == "ppl" else f"{value:.2f}"
    if key == "worst_rel_error":
        return f"{value:.3g}"
    return str(value)


def write_tables(lines: list[dict], out: Path, header: str) -> tuple[Path, Path]:
    """table.md (formatted, with a header line saying how it was measured) and table.csv (raw numbers)."""
    cols = [c for c in COLUMNS if any(c in line for line in lines)]
    md = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(_fmt(c, line.get(c)) for c in cols) + " |" for line in lines]
    (out / "table.md").write_text("\n".join(md) + "\n")
    with open(out / "table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(lines)
    return out / "table.md", out / "table.csv"


@dataclass
class SweepOutput:
    """What ``sweep`` measured and wrote: the raw rows, one line per (scheme, mode), where, and how."""

    rows: list[dict]
    lines: list[dict]
    out: Path
    written: list[Path]
    config: EvalConfig


def sweep(args: argparse.Namespace) -> SweepOutput:
    """Run the grid of ``args`` (baseline first), append results.jsonl, write table.md and table.csv."""
    from .runner import Evaluator

    schemes = [s for s in args.schemes.split(",") if s and s != "none"]
    modes = [m for m in args.modes.split(",") if m]
    tasks = [t for t in args.tasks.split(",") if t]
    out = Path(args.out)
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        raise ValueError(f"unknown task(s) {bad}; known tasks: {', '.join(TASKS)}")
    from ..schemes import get_scheme

    for s in schemes:
        get_scheme(s)
    config = config_from_args(args)
    evaluator = Evaluator(config)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    grid = [("none", "none")] + [(s, m) for s in schemes for m in modes]
    with open(out / "results.jsonl", "a") as jsonl:
        for k, (scheme, mode) in enumerate(grid, 1):
            print(f"[labkit sweep] {k}/{len(grid)}: {scheme} ({mode})", file=sys.stderr, flush=True)
            for row in evaluator.run(scheme, mode, tasks):
                jsonl.write(json.dumps(row) + "\n")
                jsonl.flush()
                rows.append(row)
    lines = summarize(rows)
    md, csv_path = write_tables(lines, out, header(config))
    return SweepOutput(rows, lines, out, [md, csv_path], config)


def header(config: EvalConfig) -> str:
    """The line above the table saying how every number in it was measured."""
    return (f"model `{config.model}` ({config.dtype}, {config.device}); text `{config.text}`, seq_len "
            f"{config.seq_len}, first {config.max_tokens} tokens; MMLU `{config.mmlu}` {config.shots}-shot "
            f"({config.mmlu_scoring} scoring)")


def report(result: SweepOutput) -> None:
    """Print the table on stdout and what was written on stderr."""
    print((result.out / "table.md").read_text())
    print("wrote " + ", ".join(str(p) for p in result.written) + f", appended {len(result.rows)} rows to "
          f"{result.out / 'results.jsonl'}", file=sys.stderr)

