"""Real-mode kernels: fp8 bit decoding, group-major packing, the CPU int8 kernel, kernel choice, CUDA."""

import pytest
import torch

from labkit.nn import kernels as K
from labkit.quant import PerGroup, PerRow, PerTensor, get_format

E4M3, E5M2, INT8 = get_format("fp8_e4m3"), get_format("fp8_e5m2"), get_format("int8")


def test_fp8_bit_decoding_matches_torch_on_every_code():
    codes = torch.arange(256, dtype=torch.uint8)
    for fmt, dtype in [(E4M3, torch.float8_e4m3fn), (E5M2, torch.float8_e5m2)]:
        expected = codes.view(dtype).float()
        got = K.fp8_code_values(codes, fmt)
        finite = torch.isfinite(expected)  # e4m3fn 0x7f/0xff are NaN: never produced by quantize
        assert torch.equal(got[finite], expected[finite]), f"{fmt.name}: bit decoding differs from torch's cast"
        assert torch.equal(torch.signbit(got[finite]), torch.signbit(expected[finite]))  # -0.0 stays -0.0
    assert K.fp8_code_values(torch.tensor([0x01], dtype=torch.uint8), E4M3).item() == 2.0**-9  # smallest subnormal


def test_group_major_packing_round_trip():
    n, k, g = 5, 23, 8
    codes = torch.arange(n * k, dtype=torch.int32).reshape(n, k).to(torch.int8)
    flat = K.pack_group_major(codes, g)
    assert flat.shape == (n * k,)
    full, tail = K.split_groups(flat, n, k, g)
    assert full.shape == (2, n, g) and tail.shape == (n, 7)
    assert torch.equal(full[1], codes[:, 8:16]) and torch.equal(tail, codes[:, 16:])
    assert K.split_groups(K.pack_group_major(codes[:, :16], g), n, 16, g)[1] is None


@pytest.mark.parametrize("m, k, n", [(1, 576, 40), (5, 64, 7), (33, 128, 24), (3, 200, 9), (2, 24, 5)])
def test_int8pack_mm_matches_a_float64_matmul(m, k, n):
    """Including K not a multiple of 16 (the raw kernel would be wrong or crash there)."""
    torch.manual_seed(0)
    x = torch.randn(m, k).bfloat16().float()  # already bf16-representable: only the kernel's own rounding
    q = torch.randint(-127, 128, (n, k), dtype=torch.int8)
    ref = x.double() @ q.double().t()
    got = K.int8pack_mm(x, q).double()
    assert ((got - ref).norm() / ref.norm()).item() < 4e-3


@pytest.mark.parametrize("granularity", [PerTensor(), PerRow(), PerGroup(64), PerGroup(48)])
@pytest.mark.parametrize("fmt", [INT8, E4M3])
def test_every_cpu_kernel_matches_dequantize_then_matmul(fmt, granularity):
    from labkit.quant import choose_qparams, dequantize, quantize

    torch.manual_seed(1)
    w = torch.randn(40, 160)
    qp = choose_qparams(w, fmt, granularity)
    codes = quantize(w, qp)
    stored = codes.view(torch.uint8) if fmt.is_float else codes
    if isinstance(granularity, PerGroup):
        stored = K.pack_group_major(stored, granularity.group_size)
    w_hat = dequantize(codes, qp).double()
    assert torch.equal(K.dequantize_weight(stored, qp.scale, fmt, granularity, 160), w_hat.float())
    for m in (1, 4, 40):
        x = torch.randn(m, 160)
        ref = x.double() @ w_hat.t()
        got = K.weight_only_mm(x, stored, qp.scale, fmt, granularity).double()
        tol = 1e-2 if fmt is INT8 else 1e-5  # the int8 kernel rounds activations to bf16
        assert ((got - ref).norm() / ref.norm()).item() < tol, f"{fmt.name} {granularity} M={m}"


def test_kernel_choice_per_phase():
    cpu = torch.device("cpu")
    assert K.pick_kernel(cpu, INT8, PerRow(), 1) is K.int8_rowwise_cpu
    assert K.pick_kernel(cpu, INT8, PerGroup(128), 1) is K.int8_grouped_cpu
    assert K.pick_kernel(cpu, INT8, PerGroup(128), 512) is K.dequant_mm
    assert K.pick_kernel(cpu, E4M3, PerRow(), 1) is K.converted_decode_cpu
    assert K.pick_kernel(cpu, E4M3, PerRow(), 512) is K.dequant_mm
    assert K.pick_kernel(cpu, E4M3, PerGroup(64), 512) is K.dequant_mm


def _cuda_case(fmt, m=64, k=200, n=72):
    from labkit.quant import choose_qparams, dequantize, quantize

    torch.manual_seed(0)
    w = torch.randn(n, k, device="cuda")
    qp = choose_qparams(w, fmt, PerRow())
    codes = quantize(w, qp)
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    ref = x.double() @ dequantize(codes, qp).double().t()
    return x, (codes.view(torch.uint8) if fmt.is_float else codes), qp.scale, ref


@pytest.mark.gpu
@pytest.mark.parametrize("m", [8, 64])
def test_cuda_int8_int_mm(m):
    x, q, s, ref = _cuda_case(INT8, m=m)
    y = K.weight_only_mm(x, q, s, INT8, PerRow()).double()
    # per-token int8 activations on top of the weight error: a few percent at most
    assert ((y - ref).norm() / ref.norm()).item() < 3e-2


@pytest.mark.gpu
@pytest.mark.parametrize("m", [8, 64])
def test_cuda_fp8_scaled_mm(m):
    x, q, s, ref = _cuda_case(E4M3, m=m)
    y = K.weight_only_mm(x, q, s, E4M3, PerRow()).double()
    assert ((y - ref).norm() / ref.norm()).item() < 6e-2


@pytest.mark.parametrize("fmt, granularity", [(E4M3, PerRow()), (E4M3, PerGroup(64)), (INT8, PerGroup(64))])
def test_chunked_conversion_matches_unchunked(monkeypatch, fmt, granularity):
    """Force many small chunks (and the converted path for int8 groups): same result."""
    from labkit.quant import choose_qparams, dequantize, quantize

    torch.manual_seed(2)
    w = torch.randn(50, 200)
    qp = choose_qparams(w, fmt, granularity)
    codes = quantize(w, qp)
    stored = codes.view(torch.uint8) if fmt.is_float else codes
    if isinstance(granularity, PerGroup):
        stored = K.pack_group_major(stored, granularity.group_size)
    x = torch.randn(2, 200)
    ref = x.double() @ dequantize(codes, qp).double().t()
    monkeypatch.setattr(K, "CHUNK_ELEMENTS", 7 * 200)  # 7 rows per chunk: 8 chunks, the last one short
    got = K.converted_decode_cpu(x, stored, qp.scale, fmt, granularity).double()
    assert ((got - ref).norm() / ref.norm()).item() < 1e-6


@pytest.mark.parametrize("fmt_name, qmax", [("int8", 127.0), ("fp8_e4m3", 448.0)])
def test_quantize_per_token_matches_a_hand_written_absmax(fmt_name, qmax):
    from labkit.nn.kernels import quantize_per_token
    from labkit.quant.formats import get_format

    x = torch.randn(5, 24, generator=torch.Generator().manual_seed(0)) * torch.tensor([[0.1], [1], [10], [3], [0]])
    codes, scales = quantize_per_token(x, get_format(fmt_name))
    amax = x.abs().amax(dim=1, keepdim=True)
    want_scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))  # an all-zero token: scale 1
    torch.testing.assert_close(scales, want_scale)
    scaled = x / want_scale
    want = scaled.round().to(torch.int8) if fmt_name == "int8" else scaled.to(torch.float8_e4m3fn)
    assert codes.dtype == want.dtype and torch.equal(codes.float(), want.float())
