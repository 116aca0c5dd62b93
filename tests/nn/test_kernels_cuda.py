"""CUDA paths of labkit.nn.kernels: the 8-bit GEMMs must really run, on awkward shapes, exactly.

Complements tests/nn/test_kernels.py (accuracy against the float product): here a spy checks that
``torch._int_mm`` / ``torch._scaled_mm`` is the kernel that ran (a silent fallback to
dequantize-then-GEMM would pass an accuracy test and lose the speed), with K and N that are not
multiples of 8/16 (the padding), and the result is compared with the same W8A8 arithmetic done
independently in float64: y = sx[t] · sw[o] · Σ_k qx[t, k] · qw[o, k], which int32 accumulation
reproduces exactly for INT8.
"""

import pytest
import torch

from labkit.nn import kernels as K
from labkit.quant import FORMATS, PerRow, choose_qparams, quantize

INT8, E4M3 = FORMATS["int8"], FORMATS["fp8_e4m3"]


def _spy(monkeypatch, name):
    calls = []
    real = getattr(torch, name)

    def wrapper(*args, **kwargs):
        tensors = list(args) + [kwargs[key] for key in sorted(kwargs)]  # scale_a, scale_b come as keywords
        calls.append([tuple(a.shape) for a in tensors if isinstance(a, torch.Tensor)])
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, name, wrapper)
    return calls


def _case(fmt, m, k, n, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    w = torch.randn(n, k, device="cuda", generator=gen)
    qp = choose_qparams(w, fmt, PerRow())
    codes = quantize(w, qp)
    x = torch.randn(m, k, device="cuda", generator=gen).to(torch.bfloat16)
    return x, codes, qp.scale


@pytest.mark.gpu
@pytest.mark.parametrize("m, k, n", [(17, 203, 77), (64, 2048, 6144), (300, 6144, 2048)])
def test_int_mm_runs_and_equals_w8a8_arithmetic(monkeypatch, m, k, n):
    x, codes, scale = _case(INT8, m, k, n)
    calls = _spy(monkeypatch, "_int_mm")
    y = K.weight_only_mm(x, codes, scale, INT8, PerRow())
    assert calls, f"torch._int_mm did not run for M={m} > 16 tokens (fell back to dequantize + GEMM)"
    (a_shape, b_shape), = calls
    assert a_shape[1] % 8 == 0 and b_shape[0] % 8 == 0 and b_shape[1] % 8 == 0, f"unpadded operands {calls}"
    x32 = x.float()
    sx = x32.abs().amax(1, keepdim=True).clamp_min(1e-12) / 127
    qx = torch.round(x32 / sx).clamp(-127, 127)
    ref = (qx.double() @ codes.double().t()) * sx.double() * scale.double()
    assert y.shape == (m, n)
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-4)


@pytest.mark.gpu
def test_int8_decode_does_not_call_int_mm(monkeypatch):
    x, codes, scale = _case(INT8, 4, 256, 128)
    calls = _spy(monkeypatch, "_int_mm")
    y = K.weight_only_mm(x, codes, scale, INT8, PerRow())
    assert not calls, "torch._int_mm needs M > 16; decode must use another path"
    ref = x.double() @ (codes.double() * scale.double()[:, None]).t()
    assert ((y.double() - ref).norm() / ref.norm()).item() < 1e-2


@pytest.mark.gpu
def test_int8_decode_reads_int8_weights_not_a_dequantized_copy(monkeypatch):
    """Dequantizing the whole weight every decode step is the 0.37x-of-BF16 trap; the int8 GEMV must run."""
    x, codes, scale = _case(INT8, 1, 2048, 6144)
    calls = []
    real = torch.ops.aten._weight_int8pack_mm

    class Spy:
        def __call__(self, *args):
            calls.append(tuple(a.shape for a in args))
            return real(*args)

    monkeypatch.setattr(torch.ops.aten, "_weight_int8pack_mm", Spy())
    y = K.weight_only_mm(x, codes, scale, INT8, PerRow())
    assert calls, "CUDA int8 per-row decode did not use _weight_int8pack_mm (fell back to dequantize + GEMM)"
    ref = x.double() @ (codes.double() * scale.double()[:, None]).t()
    assert ((y.double() - ref).norm() / ref.norm()).item() < 1e-2


@pytest.mark.gpu
@pytest.mark.parametrize("m, k, n", [(17, 203, 77), (128, 2048, 6144)])
def test_scaled_mm_runs_with_rowwise_scales(monkeypatch, m, k, n):
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("float8 tensor cores need compute capability ≥ 8.9 (Ada, Hopper)")
    x, codes, scale = _case(E4M3, m, k, n)
    calls = _spy(monkeypatch, "_scaled_mm")
    y = K.weight_only_mm(x, codes.view(torch.uint8), scale, E4M3, PerRow())
    assert calls, f"torch._scaled_mm did not run for M={m}"
    (a_shape, b_shape, sa_shape, sb_shape), = calls
    assert a_shape[0] == m and sa_shape == (m, 1) and sb_shape[0] == 1, f"row-wise scales expected, got {calls}"
    x32 = x.float()
    sx = x32.abs().amax(1, keepdim=True).clamp_min(1e-12) / 448
    qx = (x32 / sx).clamp(-448, 448).to(torch.float8_e4m3fn).double()
    ref = (qx @ codes.double().t()) * sx.double() * scale.double()
    # bf16 output: 8 bits of mantissa
    assert ((y.double() - ref).norm() / ref.norm()).item() < 1e-2
