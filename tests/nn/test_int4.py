"""Int4Linear and torch's CPU int4 kernel against a float reference built by hand."""

import pytest
import torch
from torch import nn

from labkit.nn import quantize_model
from labkit.nn.int4 import INT4_KERNEL, Int4Linear, Int4WeightOnly, check_kernel_shape, kernel_layout, quantize_int4

needs_kernel = pytest.mark.skipif(INT4_KERNEL is not None, reason=INT4_KERNEL or "")


def hand_int4(w: torch.Tensor, g: int):
    """Symmetric int4 per group, written out in float64 (independent of labkit.quant)."""
    n, k = w.shape
    codes = torch.empty(n, k, dtype=torch.int8)
    scale = torch.empty(n, -(-k // g))
    for j, c0 in enumerate(range(0, k, g)):
        blk = w[:, c0:c0 + g].double()
        amax = blk.abs().amax(dim=1)
        s = torch.where(amax > 0, amax / 7, torch.ones_like(amax))
        codes[:, c0:c0 + g] = torch.clamp(torch.round(blk / s[:, None]), -7, 7).to(torch.int8)
        scale[:, j] = s.float()
    return codes, scale


def test_worked_example_of_the_docstring():
    codes, scale = quantize_int4(torch.tensor([[0.7, -0.35, 0.1, 0.0]]), 4)
    assert codes.tolist() == [[7, -4, 1, 0]]
    assert scale[0].tolist() == pytest.approx([0.1])


@pytest.mark.parametrize("shape,g", [((32, 64), 32), ((48, 200), 64)])
def test_quantize_int4_matches_a_hand_computation(shape, g):
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    w[3, :g] = 0.0
    codes, scale = quantize_int4(w, g)
    ref_codes, ref_scale = hand_int4(w, g)
    assert torch.equal(codes, ref_codes)
    torch.testing.assert_close(scale, ref_scale, rtol=1e-6, atol=0)


def test_kernel_layout_is_shift_by_8_and_scales_transposed():
    codes = torch.tensor([[-7, 0, 7, 1]], dtype=torch.int8).repeat(16, 1)
    scale = torch.arange(1, 33, dtype=torch.float32).reshape(16, 2)
    u, sz = kernel_layout(codes, scale)
    assert u.dtype == torch.int32 and u[0].tolist() == [1, 8, 15, 9]
    assert sz.shape == (2, 16, 2) and torch.equal(sz[..., 0], scale.T) and not sz[..., 1].any()


@needs_kernel
@pytest.mark.parametrize("n,k,g,m", [(192, 576, 64, 1), (64, 128, 32, 5), (32, 256, 128, 40)])
def test_real_layer_matches_float_reference(n, k, g, m):
    gen = torch.Generator().manual_seed(n + k)
    lin = nn.Linear(k, n, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n, k, generator=gen) * 0.05)
        lin.bias.copy_(torch.randn(n, generator=gen))
    layer = Int4Linear.from_float(lin, g, "real")
    codes, scale = hand_int4(lin.weight.detach(), g)
    assert torch.equal(layer.codes(), codes)                      # the opaque packing reads back exactly
    s_bf16 = scale.bfloat16().float().repeat_interleave(g, dim=1)
    w_hat = codes.double() * s_bf16.double()                      # what the kernel multiplies by
    torch.testing.assert_close(layer.dequantized_weight().double(), w_hat, rtol=0, atol=0)
    x = torch.randn(2, m, k, generator=gen)
    ref = x.bfloat16().double() @ w_hat.T + lin.bias.double()
    y = layer(x)
    assert y.shape == (2, m, n) and y.dtype == torch.float32
    # bf16 activations and output rounding: ≤ 2^-8 of the output scale
    err = (y.double() - ref).abs().max() / ref.abs().max()
    assert err < 2**-7, err
    fake = Int4Linear.from_float(lin, g, "fake")
    assert ((fake(x).double() - ref).abs().max() / ref.abs().max()) < 2**-7


@needs_kernel
def test_real_storage_is_half_a_byte_per_weight():
    layer = Int4Linear.from_float(nn.Linear(576, 1536, bias=False), 64, "real")
    assert layer.weight_bytes() == 1536 * 576 // 2 + 9 * 1536 * 2 * 2


def test_kernel_constraints_are_named():
    with pytest.raises(ValueError, match="multiple of the group size"):
        check_kernel_shape(32, 600, 64)
    with pytest.raises(ValueError, match="multiple of 16"):
        check_kernel_shape(100, 576, 64)
    with pytest.raises(ValueError, match="group sizes"):
        Int4WeightOnly(48)


@needs_kernel
def test_quantize_model_swaps_every_decoder_linear():
    from labkit.models.tiny import tiny_model

    model = tiny_model("qwen3")
    res = quantize_model(model, Int4WeightOnly(32), mode="real")
    layers = [m for m in res.model.modules() if isinstance(m, Int4Linear)]
    assert len(layers) == res.report.n_layers == 14
    assert isinstance(res.model.lm_head, nn.Linear)
    assert 0.05 < res.report.worst_error < 0.3                   # 4 bits: a real, bounded error
    ids = torch.randint(0, 320, (1, 12), generator=torch.Generator().manual_seed(0))
    fake = quantize_model(model, Int4WeightOnly(32), mode="fake").model
    with torch.no_grad():
        a, b = res.model(ids).logits, fake(ids).logits
    assert (a - b).abs().max() / b.abs().max() < 2**-5
