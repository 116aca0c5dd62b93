"""labkit.quant — the pure math of quantization (numpy arrays and torch tensors alike).

Formats, granularities, choose_qparams → quantize → dequantize, and the exercise references
of HW4 (absmax, zero point, per-channel, GPTQ, SmoothQuant). Nothing here knows about models.
"""

from .formats import FORMATS, Format, get_format, symmetric_int
from .granularity import Granularity, PerGroup, PerRow, PerTensor, PerToken, parse_granularity, scale_shape
from .primitives import QParams, choose_qparams, dequantize, fake_quantize, quantize
from .absmax import (
    absmax_dequantize, absmax_quantize, perchannel_absmax_quantize, perchannel_dequantize,
    pertensor_absmax_quantize, pertensor_dequantize,
)
from .zeropoint import zeropoint_dequantize, zeropoint_quantize
from .gptq import gptq_simplified, naive_quantize, quantize_column
from .gptq_full import GPTQResult, gptq_quantize, gptq_quantize_hessian, hessian
from .smoothquant import (
    apply_smoothing, channel_absmax, compute_smooth_factor, fold_into_linear, fold_into_norm,
    smooth_factors, weight_channel_absmax,
)

__all__ = [
    "FORMATS", "Format", "get_format", "symmetric_int",
    "Granularity", "PerGroup", "PerRow", "PerTensor", "PerToken", "parse_granularity", "scale_shape",
    "QParams", "choose_qparams", "dequantize", "fake_quantize", "quantize",
    # exercise references (HW4 companion set)
    "absmax_quantize", "absmax_dequantize", "pertensor_absmax_quantize", "pertensor_dequantize",
    "perchannel_absmax_quantize", "perchannel_dequantize",
    "zeropoint_quantize", "zeropoint_dequantize",
    "quantize_column", "naive_quantize", "gptq_simplified",
    "compute_smooth_factor", "apply_smoothing",
    # full GPTQ (torch)
    "GPTQResult", "gptq_quantize", "gptq_quantize_hessian", "hessian",
    # SmoothQuant for models
    "channel_absmax", "weight_channel_absmax", "smooth_factors", "fold_into_norm", "fold_into_linear",
]
