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
from .zeropoint import (
    perchannel_zeropoint_dequantize, perchannel_zeropoint_quantize, zeropoint_dequantize, zeropoint_quantize,
    zeropoint_quantize_storable,
)
from .groupwise import pergroup_dequantize, pergroup_fake_quantize_fp8, pergroup_quantize
from .gptq import gptq_block, gptq_lazy, gptq_simplified, inverse_hessian_factor, naive_quantize, quantize_column
from .w8a8 import quantize_per_token, smoothquant_best_alpha, w8a8_int_linear, w8a8_simulate
from .llm_int8 import llm_int8_matmul
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
    "zeropoint_quantize", "zeropoint_dequantize", "zeropoint_quantize_storable",
    "perchannel_zeropoint_quantize", "perchannel_zeropoint_dequantize",
    "pergroup_quantize", "pergroup_dequantize", "pergroup_fake_quantize_fp8",
    "quantize_column", "naive_quantize", "gptq_simplified", "inverse_hessian_factor", "gptq_block", "gptq_lazy",
    "compute_smooth_factor", "apply_smoothing",
    "quantize_per_token", "w8a8_simulate", "w8a8_int_linear", "smoothquant_best_alpha", "llm_int8_matmul",
    # full GPTQ (torch)
    "GPTQResult", "gptq_quantize", "gptq_quantize_hessian", "hessian",
    # SmoothQuant for models
    "channel_absmax", "weight_channel_absmax", "smooth_factors", "fold_into_norm", "fold_into_linear",
]
