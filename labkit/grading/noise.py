"""Known library noise, silenced once at import — so a notebook's setup cell, which imports
``labkit.grading`` first, keeps red stderr lines out of every cell below it.

What is silenced, and why it is harmless (torch 2.13 CPU, torchao 0.18):

* torchao's ``Failed to load …/_C_mxfp8….so`` and ``…/_C_cutlass_90a.abi3.so``: CUDA kernels (MX-FP8
  and CUTLASS for Hopper) that cannot load on a CPU-only machine; the lab never calls them. torchao
  logs them through ``logging.getLogger("torchao")``, which prints to stderr when nothing is set up.
* torch's ``<enum 'KernelPreference'> is an Enum subclass and is now natively supported by
  torch.compile …`` from ``torch.utils._pytree``: torchao registers an Enum the old way; a
  deprecation notice for torchao's authors, not for us.

Only these messages are dropped (a logging filter on the two loggers matches their text); any other
warning of the same libraries still shows. ``install()`` is idempotent.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = {
    "torchao": re.compile(r"Failed to load .*(_C_mxfp8|_C_cutlass|_C\b|\.so)"),
    "torch.utils._pytree": re.compile(r"is an Enum subclass and is now natively supported"),
}


class KnownNoise(logging.Filter):
    """Drops the log records of one logger whose message matches a known harmless pattern."""

    def __init__(self, pattern: re.Pattern):
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record: let logging report it as usual
            return True
        return not self.pattern.search(text)


def install() -> None:
    """Attach the filters (before torchao is first imported, so its import-time lines are caught)."""
    for name, pattern in _PATTERNS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, KnownNoise) for f in logger.filters):
            logger.addFilter(KnownNoise(pattern))


install()
