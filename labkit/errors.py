"""Error types shared by every layer of labkit (this module imports nothing).

``NoOpQuantizationError`` is the one answer to "the quantization changed nothing": ``quantize_model``
when no weight moved, the W8A8 paths when no linear quantizes its activations or the logits did not
move, the evaluator when a quantized model gives the baseline's logits or perplexity to the last
digit, the nano-vllm swap when no weight moved. A student report once showed SmoothQuant rows equal
to the bf16 baseline to the last digit; that must be an error, never a row in a table.

It derives from both ``ValueError`` and ``RuntimeError`` because the guards it unifies raised one or
the other; code that caught either keeps working. The ``labkit`` command maps it to exit code 3
(``labkit.cli_common.EXIT_CODES``).
"""

from __future__ import annotations


class NoOpQuantizationError(ValueError, RuntimeError):
    """A quantization that changed nothing (no weight, no activation, no logit moved): not a result."""


__all__ = ["NoOpQuantizationError"]
