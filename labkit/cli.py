"""The ``labkit`` command line: one subcommand per module, imported only when it is called.

Each module named in ``COMMANDS`` exposes ``add_arguments(parser)`` and ``run(args) -> int``.
Only the chosen subcommand's module is imported, so ``labkit eval`` does not pay for the
benchmark's or the grader's imports. ``run`` raises on bad input; ``main`` maps the exception to an
exit code and a one-line message through ``labkit.cli_common.run_command`` — the one place that
decides exit codes for every subcommand (table in ``labkit.cli_common``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .cli_common import run_command

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, one-line help) — each issue adds its own rows
    "bench-gptq": ("labkit.bench.gptq", "alias of `labkit bench gptq`: time full GPTQ against round-to-nearest"),
    "course": ("labkit.course.release", "hw4 course: regenerate notebooks/ from autograde/source, check, time"),
    "collect": ("labkit.course.collect", "put an LMS zip (Canvas, Moodle, studentid_notebook.ipynb) into submitted/<id>/<assignment>/"),
    "grade": ("labkit.course.parallel", "autograde a class on Dask (local workers or a cluster); the gradebook has one writer"),
    "grade-report": ("labkit.course.report", "per-task score distribution from the gradebook: which blanks the class misses"),
    "bench-grade": ("labkit.course.bench_grade", "students per minute of labkit grade with 1 vs N local workers"),
    "bench": ("labkit.bench.cli", "benchmarks: decode/prefill throughput vs baseline with roofline fractions (default); "
                                  "modes kernels, roofline, nanovllm, gptq, matmul-error"),
    "matmul-error": ("labkit.bench.matmul_error", "alias of `labkit bench matmul-error`: INT8 vs FP8 matmul error"),
    "eval": ("labkit.eval.cli", "perplexity, KL divergence or MMLU of one model under one quantization scheme (JSON)"),
    "sweep": ("labkit.viz.sweep_plots", "schemes x modes x tasks grid: results JSONL, markdown/CSV table and plots"),
    "fetch-model": ("labkit.models.fetch", "fetch and convert the default model (SmolLM2-135M-Instruct) into the cache"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description="LLM quantization lab tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if command is None:
        parser.print_help()
        return 2
    return run_command(command, importlib.import_module(args._module).run, args)


if __name__ == "__main__":
    sys.exit(main())
