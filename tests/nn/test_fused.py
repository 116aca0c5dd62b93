"""labkit.nn.fused: the compiled kernels against float64 products of the dequantized weight.

Each distinct shape compiles once (seconds), so the cases are few and chosen to cover every branch:
int8 per-group with a short last group, e4m3 per row, e5m2 per tensor, a K smaller than the group,
int8 per row with a K long enough to be reduced in chunks,
each in decode (fused GEMV, float32) and prefill (fused dequantize, then a bf16 GEMM) shapes.
"""

import pytest
import torch
from torch import nn

from labkit.nn import QuantLinear, fused
from labkit.nn import kernels as K
from labkit.quant import PerGroup, PerRow, PerTensor
from labkit.schemes import WeightOnly

pytestmark = pytest.mark.slow

CASES = [("int8", PerGroup(64), 200), ("fp8_e4m3", PerRow(), 200), ("fp8_e5m2", PerTensor(), 200),
         ("fp8_e4m3", PerGroup(256), 200), ("int8", PerRow(), 512)]  # K = 512: reduced in chunks of 256


@pytest.mark.parametrize("fmt, granularity, k", CASES)
@pytest.mark.parametrize("m", [1, K.DECODE_MAX_TOKENS + 4])
def test_fused_kernels_match_float64_reference(fmt, granularity, k, m):
    gen = torch.Generator().manual_seed(0)
    linear = nn.Linear(k, 40, bias=True)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(40, k, generator=gen))
    layer = QuantLinear.from_float(linear, WeightOnly(fmt=fmt, granularity=granularity), mode="real")
    x = torch.randn(m, k, generator=gen)
    ref = x.double() @ layer.dequantized_weight().double().t() + linear.bias.double()
    with fused.enabled():
        kernel = K.pick_kernel(x.device, layer.format, granularity, m)
        y = layer(x)
    assert kernel in (fused.fused_decode, fused.fused_dequant_mm) or kernel is K.int8_rowwise_cpu
    rel = ((y.double() - ref).norm() / ref.norm()).item()
    # decode: fp32 all the way; prefill: bf16 activations and weight (2^-9 each), fp32 accumulation
    tol = 1e-6 if m <= K.DECODE_MAX_TOKENS else 1e-2
    assert rel < tol, f"{fmt} {granularity} M={m}: relative error {rel:.2e} vs the float64 product (allowed {tol:g})"


def test_enable_disable_restores_the_eager_table():
    before = dict(K.KERNELS)
    with fused.enabled():
        assert fused.is_enabled()
        assert K.KERNELS[("cpu", "float", False, True)] is fused.fused_decode
    assert K.KERNELS == before and not fused.is_enabled()
