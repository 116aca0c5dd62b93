"""What every ``labkit`` subcommand shares: the model/runtime options and the error → exit-code map.

Options (``add_model_options``), defined once so that ``labkit eval``, ``labkit sweep`` and ``labkit
bench`` spell and default them the same way:

    --model    default "default"   'default' (SmolLM2-135M-Instruct), a local HF folder, a hub id, tiny-*
    --device   default "auto"      auto = cuda if available, else cpu
    --dtype    default "auto"      auto = float32 on CPU, bfloat16 on CUDA
    --include-lm-head / --no-include-lm-head
                                   default given by the command (see below)
    --threads  default None        torch threads (None: torch's choice)
    --seed     default 0           seeds torch's and Python's generators

The lm_head default is the one option a command chooses on purpose: ``eval`` measures the decoder
linears, as the papers do (lm_head off), while ``bench`` measures decode speed, where the lm_head is
a fifth of SmolLM2's bytes read per token (lm_head on). The flag is the same for both.
``resolve_runtime(args)`` turns "auto" into a concrete device and dtype and applies threads and seed.

Exit codes (``EXIT_CODES``, first matching row wins; ``run_command`` applies them):

    0  success
    1  the command ran and its result is a failure (a speed target missed, a submission failed):
       returned by the command itself, never mapped from an exception
    2  the command cannot run as asked: a bad argument, a missing file, model or package, missing
       hardware (ValueError, TypeError, OSError incl. FileNotFoundError, ImportError, RuntimeError)
    3  a quantization that changed nothing (``labkit.errors.NoOpQuantizationError``)
  130  interrupted (Ctrl-C)

An error prints ONE line on stderr, ``labkit <command>: error: <message>``, and no traceback. Any
other exception (a KeyError, an AssertionError...) is a bug in labkit and keeps its traceback.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Callable

from .errors import NoOpQuantizationError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOOP, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXIT_CODES: tuple[tuple[tuple[type[BaseException], ...], int], ...] = (
    ((NoOpQuantizationError,), EXIT_NOOP),
    ((KeyboardInterrupt,), EXIT_INTERRUPTED),
    ((ValueError, TypeError, OSError, ImportError, RuntimeError), EXIT_USAGE),
)

DTYPES = ("auto", "float32", "bfloat16", "float16")


def exit_code(err: BaseException) -> int | None:
    """The exit code ``err`` maps to, or None for an exception that is a bug (keeps its traceback)."""
    for types, code in EXIT_CODES:
        if isinstance(err, types):
            return code
    return None


def error_line(command: str, err: BaseException) -> str:
    """``labkit <command>: error: <message>`` on one line (the message's lines joined by spaces)."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    if isinstance(err, KeyboardInterrupt):
        text = "interrupted"
    return f"labkit {command}: error: {text or type(err).__name__}"


def run_command(command: str, body: Callable[..., int | None], *args) -> int:
    """``body(*args)`` with the exit-code map applied: its return value (None = 0), or the mapped
    code of the exception it raised after printing ``error_line`` on stderr. Exceptions outside the
    map propagate with their traceback."""
    try:
        return int(body(*args) or 0)
    except BaseException as err:  # noqa: BLE001 - mapped or re-raised below
        code = exit_code(err)
        if code is None:
            raise
        print(error_line(command, err), file=sys.stderr, flush=True)
        return code


def add_model_options(parser: argparse.ArgumentParser, *, include_lm_head: bool) -> None:
    """Add --model, --device, --dtype, --include-lm-head, --threads and --seed (module docstring)."""
    parser.add_argument("--model", default="default",
                        help="'default' (SmolLM2-135M-Instruct, fetched once), a local HF folder, a hub id "
                             "(e.g. Qwen/Qwen3-1.7B) or tiny-qwen3/tiny-qwen2/tiny-llama (random, for tests)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", default="auto", choices=DTYPES,
                        help="dtype the model is loaded and run in (default auto: float32 on CPU, bfloat16 on CUDA)")
    parser.add_argument("--include-lm-head", action=argparse.BooleanOptionalAction, default=include_lm_head,
                        help=f"quantize the lm_head too (default: {'yes' if include_lm_head else 'no'} for this command)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0, help="seed for torch and Python's random (default 0)")


def resolve_device(device: str | None) -> str:
    """"auto"/None → "cuda" if available else "cpu"; anything else unchanged."""
    if device in (None, "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str | None, device: str) -> str:
    """"auto"/None → "bfloat16" on CUDA, "float32" elsewhere; a known dtype name unchanged."""
    if dtype in (None, "auto"):
        return "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
    return dtype


def resolve_runtime(args: argparse.Namespace) -> argparse.Namespace:
    """Make ``args.device``/``args.dtype`` concrete and apply ``--threads`` and ``--seed``; returns args."""
    import torch

    args.device = resolve_device(getattr(args, "device", None))
    args.dtype = resolve_dtype(getattr(args, "dtype", None), args.device)
    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be ≥ 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    seed = getattr(args, "seed", None)
    if seed is not None:
        torch.manual_seed(seed)
        random.seed(seed)
    return args
