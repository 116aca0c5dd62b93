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


def test_arithmetic_e4m3_decode_is_exact_on_every_code():
    """The prefill dequantization decodes e4m3 with float arithmetic; it must give torch's value for
    all 254 finite codes (0x7F/0xFF are NaN in e4m3fn and never produced by the quantizer)."""
    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    want = codes.view(torch.float8_e4m3fn).to(torch.float32)
    finite = torch.isfinite(want)
    assert int(finite.sum()) == 254
    for decode in (fused._e4m3_values_arith, torch.compile(fused._e4m3_values_arith, dynamic=False)):
        got = decode(codes)
        assert torch.equal(got[finite], want[finite]), (codes[finite][got[finite] != want[finite]])
        assert torch.equal(torch.signbit(got[finite]), torch.signbit(want[finite]))  # -0.0 stays -0.0
