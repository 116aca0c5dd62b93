"""QuantLinear: fake vs real, real vs an independent dequantize-then-matmul reference, bytes, bias, repr."""

import pytest
import torch
from torch import nn

from labkit.nn import QuantLinear
from labkit.quant import fake_quantize
from labkit.schemes import WeightOnly, get_scheme, scheme_names

SCHEMES = [n for n in scheme_names() if isinstance(get_scheme(n), WeightOnly) and get_scheme(n).fmt != "fp8_e5m2"]
# int8 real runs the CPU int8 kernel on bf16-rounded activations (relative error ~2^-9 per element);
# fp8 real converts the codes exactly and multiplies in float32.
TOL = {"int8": 1e-2, "fp8_e4m3": 1e-5}


def make_linear(n_in=200, n_out=72, bias=True, seed=0):
    torch.manual_seed(seed)
    lin = nn.Linear(n_in, n_out, bias=bias)
    with torch.no_grad():
        lin.weight[3, 5] = 0.9  # an outlier, so per-tensor, per-row and per-group scales differ
    return lin


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def reference(lin, scheme, x):
    """Fake-quantize the weight with labkit.quant (not labkit.nn), multiply in float64."""
    w = fake_quantize(lin.weight.detach(), scheme.format, scheme.granularity).double()
    b = None if lin.bias is None else lin.bias.detach().double()
    return nn.functional.linear(x.double(), w, b)


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("tokens", [1, 40])  # decode kernel and prefill kernel
def test_real_and_fake_match_the_reference(name, tokens):
    lin, scheme = make_linear(), get_scheme(name)
    x = torch.randn(2, tokens, 200)
    ref = reference(lin, scheme, x)
    fake = QuantLinear.from_float(lin, scheme, "fake")(x)
    real = QuantLinear.from_float(lin, scheme, "real")(x)
    assert real.shape == fake.shape == (2, tokens, 72) and real.dtype == torch.float32
    assert rel(fake, ref) < 1e-6, f"{name} fake: expected F.linear with the fake-quantized weight"
    err = rel(real, ref)
    assert err < TOL[scheme.fmt], f"{name} real ({tokens} tokens): relative error {err:.2e} vs the reference"


@pytest.mark.parametrize("name", ["int8-row", "int8-group64", "fp8-row", "fp8-group128"])
def test_bf16_activations(name):
    lin = make_linear().to(torch.bfloat16)
    x = torch.randn(3, 200, dtype=torch.bfloat16)
    ref = reference(lin, get_scheme(name), x)
    for mode in ("fake", "real"):
        y = QuantLinear.from_float(lin, name, mode)(x)
        assert y.dtype == torch.bfloat16
        assert rel(y, ref) < 2e-2, f"{name} {mode} in bf16"


def test_hand_computed_int8_row():
    lin = nn.Linear(4, 2, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.27, -0.5, 0.004, 0.0], [0.1, 0.2, -0.3, 0.05]]))
        lin.bias.copy_(torch.tensor([1.0, -1.0]))
    q = QuantLinear.from_float(lin, "int8-row", "real")
    # row 0: absmax 1.27 → scale 0.01, codes [127, -50, 0, 0]; row 1: scale 0.3/127, codes [42, 85, -127, 21]
    assert q.codes().tolist() == [[127, -50, 0, 0], [42, 85, -127, 21]]
    assert torch.allclose(q.scale, torch.tensor([0.01, 0.3 / 127]))
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    expected = torch.tensor([[0.77 + 1.0, 0.3 / 127 * 21 - 1.0]])
    assert torch.allclose(q(x), expected, rtol=5e-3), "(127 - 50)·0.01 + bias 1 = 1.77; 21·0.3/127 - 1"


@pytest.mark.parametrize("name", ["int8-group64", "fp8-group128", "int8-tensor", "fp8-row"])
def test_stored_codes_are_the_quantizers_codes(name):
    """K = 200 is not a multiple of 64 or 128: the last group is shorter, and nothing is padded."""
    from labkit.quant import choose_qparams, quantize

    lin, scheme = make_linear(), get_scheme(name)
    q = QuantLinear.from_float(lin, scheme, "real")
    qp = choose_qparams(lin.weight.detach(), scheme.format, scheme.granularity)
    assert torch.equal(q.codes().float(), quantize(lin.weight.detach(), qp).float())
    assert torch.equal(q.scale, qp.scale)
    assert q.qweight.numel() == 72 * 200, "real mode must store exactly one byte per weight"


def test_real_mode_shrinks_memory_4x():
    lin = nn.Linear(576, 1536, bias=False)
    before = lin.weight.numel() * 4
    for name, extra in [("int8-row", 1536 * 4), ("int8-tensor", 4), ("fp8-group128", 1536 * 5 * 4)]:
        q = QuantLinear.from_float(lin, name, "real")
        assert q.weight_bytes() == 576 * 1536 + extra
        assert before / q.weight_bytes() > 3.8
        assert not any(p.dtype == torch.float32 and p.numel() >= 576 * 1536 for p in q.state_dict().values())
    assert QuantLinear.from_float(lin, "int8-row", "fake").weight_bytes() == before


def test_input_untouched_bias_preserved_and_repr():
    lin = make_linear()
    w0, b0 = lin.weight.detach().clone(), lin.bias.detach().clone()
    for mode in ("fake", "real"):
        q = QuantLinear.from_float(lin, "int8-group64", mode)
        assert torch.equal(q.bias, b0) and q.bias.data_ptr() != lin.bias.data_ptr()
        assert "int8-group64" in repr(q) and f"mode={mode}" in repr(q)
    assert torch.equal(lin.weight, w0) and torch.equal(lin.bias, b0)
    q = QuantLinear.from_float(make_linear(bias=False), "fp8-row", "real")
    assert q.bias is None and q(torch.randn(1, 200)).shape == (1, 72)


def test_module_to_bf16_keeps_fp8_codes():
    """model.to(dtype) casts floating buffers; fp8 codes stored as uint8 bytes must survive it."""
    lin = make_linear()
    q = QuantLinear.from_float(lin, "fp8-row", "real")
    codes = q.codes().clone()
    q = q.to(torch.bfloat16)
    assert torch.equal(q.codes().float(), codes.float())
    x = torch.randn(2, 200)
    assert rel(q(x.bfloat16()), reference(lin, get_scheme("fp8-row"), x)) < 2e-2


def test_errors():
    lin = make_linear()
    with pytest.raises(ValueError, match="fake, real"):
        QuantLinear.from_float(lin, "int8-row", "int8")
    with pytest.raises(TypeError, match="WeightOnly"):
        QuantLinear.from_float(lin, "none", "fake")
    with pytest.raises(ValueError, match="known schemes"):
        QuantLinear.from_float(lin, "int3-row", "fake")
    with pytest.raises(ValueError, match="codes"):
        QuantLinear.from_float(lin, "int8-row", "fake").codes()


def test_e5m2_weights():
    lin, scheme = make_linear(), WeightOnly("fp8_e5m2")
    x = torch.randn(4, 200)
    assert rel(QuantLinear.from_float(lin, scheme, "real")(x), reference(lin, scheme, x)) < 1e-5
