"""labkit.quant — the pure math of quantization (numpy arrays and torch tensors alike).

Formats, granularities, choose_qparams → quantize → dequantize, and the exercise references
of HW4 (absmax, zero point, per-channel, GPTQ, SmoothQuant). Nothing here knows about models.
"""

from .formats import FORMATS, Format, get_format, symmetric_int
from .granularity import Granularity, PerGroup, PerRow, PerTensor, PerToken, parse_granularity, scale_shape
from .primitives import QParams, choose_qparams, dequantize, fake_quantize, quantize

__all__ = [
    "FORMATS", "Format", "get_format", "symmetric_int",
    "Granularity", "PerGroup", "PerRow", "PerTensor", "PerToken", "parse_granularity", "scale_shape",
    "QParams", "choose_qparams", "dequantize", "fake_quantize", "quantize",
]
