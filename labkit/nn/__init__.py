"""labkit.nn — quantized layers: weight-only ``QuantLinear`` (fake and real), the CPU/CUDA kernels
behind real mode, and ``quantize_model`` that swaps a model's decoder linears for them."""

from .convert import HANDLERS, QuantReport, QuantResult, quantize_model, register_handler
from .quant_linear import MODES, QuantLinear

__all__ = ["HANDLERS", "MODES", "QuantLinear", "QuantReport", "QuantResult", "quantize_model", "register_handler"]
