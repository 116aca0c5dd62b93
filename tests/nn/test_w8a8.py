"""W8A8 linears (INT8 and FP8 e4m3) against an independent numpy/float64 emulation and a hand case."""

import ml_dtypes
import numpy as np
import pytest
import torch

from labkit.nn.w8a8 import W8A8Linear

QMAX = {"int8": 127.0, "fp8_e4m3": 448.0}


def reference_w8a8(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, fmt: str) -> np.ndarray:
    """Per-token activations × per-row weights, written from the definition in numpy.

    Scales and the x / scale step in float32 (what any float32 quantizer does); codes multiplied and
    summed in float64, where int8 and e4m3 products and their sums are exact at these sizes.
    """

    def codes(a):
        amax = np.abs(a).max(axis=1, keepdims=True).astype(np.float32)
        scale = np.where(amax > 0, amax / np.float32(QMAX[fmt]), np.float32(1.0)).astype(np.float32)
        v = (a.astype(np.float32) / scale).astype(np.float32)
        if fmt == "int8":
            q = np.clip(np.rint(v), -127, 127)
        else:
            q = np.clip(v, -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
        return q.astype(np.float64), scale[:, 0].astype(np.float64)

    qx, sx = codes(x)
    qw, sw = codes(w)
    y = (qx @ qw.T) * sx[:, None] * sw[None, :]
    return y if b is None else y + b.astype(np.float64)


@pytest.mark.parametrize("fmt", ["int8", "fp8_e4m3"])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_float64_reference(fmt, bias):
    gen = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(96, 40, bias=bias)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(40, 96, generator=gen) * 0.05)
        if bias:
            lin.bias.copy_(torch.randn(40, generator=gen))
    x = torch.randn(2, 9, 96, generator=gen)
    x[..., 5] *= 40.0  # an outlier channel, the case W8A8 is about
    q = W8A8Linear.from_float(lin, fmt)
    y = q(x)
    assert y.shape == (2, 9, 40) and y.dtype == torch.float32
    ref = reference_w8a8(x.reshape(-1, 96).numpy(), lin.weight.detach().numpy(),
                         lin.bias.detach().numpy() if bias else None, fmt)
    np.testing.assert_allclose(y.reshape(-1, 40).double().numpy(), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max(),
                               err_msg=f"W8A8 {fmt} differs from the per-token × per-row float64 emulation")
    # and it really quantized: the float linear's output is not what came out
    assert (y - lin(x)).abs().max() > 1e-4, "W8A8 output equals the float output: nothing was quantized"


def test_hand_computed_int8_case():
    """The module docstring's worked number: x = [2.54, −1.0], W row = [0.5, 0.25] → 1.018."""
    lin = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.5, 0.25]]))
    q = W8A8Linear.from_float(lin, "int8")
    assert q.qweight.tolist() == [[127, 64]]
    y = q(torch.tensor([[2.54, -1.0]]))
    expected = 0.02 * (0.5 / 127) * (127 * 127 - 50 * 64)
    assert abs(y.item() - expected) < 1e-6, f"expected {expected:.6f}, got {y.item():.6f}"


def test_fp8_keeps_small_channels_better_than_int8_next_to_an_outlier():
    gen = torch.Generator().manual_seed(1)
    lin = torch.nn.Linear(256, 64, bias=False)
    x = torch.randn(32, 256, generator=gen) * 0.1
    x[:, 0] = 50.0
    errs = {f: (W8A8Linear.from_float(lin, f)(x) - lin(x)).pow(2).mean().item() for f in ("int8", "fp8_e4m3")}
    assert errs["fp8_e4m3"] < errs["int8"], f"per-token FP8 should beat INT8 with a 500× outlier channel: {errs}"


def test_buffers_repr_dtype_and_purity():
    lin = torch.nn.Linear(16, 8).to(torch.bfloat16)
    w = lin.weight.detach().clone()
    q = W8A8Linear.from_float(lin, "fp8")
    assert torch.equal(lin.weight, w), "from_float must not change the float linear"
    assert q.qweight.dtype == torch.float8_e4m3fn and q.weight_scale.shape == (8,)
    assert "fp8_e4m3" in repr(q) and "per token" in repr(q)
    assert q(torch.randn(3, 16, dtype=torch.bfloat16)).dtype == torch.bfloat16
    assert W8A8Linear.from_float(lin, "int8").qweight.dtype == torch.int8
    with pytest.raises(ValueError, match="W8A8 supports"):
        W8A8Linear.from_float(lin, "int4")


@pytest.mark.gpu
@pytest.mark.parametrize("fmt", ["int8", "fp8_e4m3"])
def test_cuda_kernels_match_the_cpu_emulation(fmt):
    """torch._int_mm / torch._scaled_mm on the GPU give the CPU emulation's result (same codes, same scales)."""
    if fmt == "fp8_e4m3" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("FP8 tensor cores need SM ≥ 8.9")
    gen = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(200, 72)
    x = torch.randn(40, 200, generator=gen)
    cpu = W8A8Linear.from_float(lin, fmt)
    gpu = W8A8Linear.from_float(lin.cuda(), fmt)
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-4, atol=1e-4)
