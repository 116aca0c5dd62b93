"""labkit.nn — quantized layers: weight-only ``QuantLinear`` (fake and real), ``W8A8Linear``, the CPU/CUDA
kernels behind real mode, and ``quantize_model`` that swaps a model's decoder linears for them
(``replace_linears`` is its swap loop, for other engines' layer classes)."""

from .convert import (HANDLERS, QuantReport, QuantResult, quantize_model, register_handler, relative_error,
                      replace_linears)
from .quant_linear import MODES, QuantLinear
from .w8a8 import W8A8Linear

__all__ = ["HANDLERS", "MODES", "QuantLinear", "QuantReport", "QuantResult", "W8A8Linear", "quantize_model",
           "register_handler", "relative_error", "replace_linears"]
