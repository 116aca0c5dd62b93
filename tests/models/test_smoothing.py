"""Folding SmoothQuant factors into a model is exact in float and moves the ranges as the math says."""

import pytest
import torch

from labkit.models.calibration import calibrate, calibration_windows
from labkit.models.layer_maps import LAYER_MAPS, layer_map, linear_names
from labkit.models.smoothing import smooth_model
from labkit.models.tiny import ARCHS, tiny_model


def outlier_model(arch: str):
    """A tiny model whose norms create outlier channels (×30) and whose biases are non-zero, so
    that smoothing factors are far from 1 and a wrong fold shows in the logits."""
    model = tiny_model(arch, seed=1)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layernorm.weight"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
                p[:3] *= 30.0
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=gen))
    return model


def ids(n=4, seq=16, seed=0):
    stream = torch.randint(1, 320, (2000,), generator=torch.Generator().manual_seed(seed))
    return calibration_windows(stream, n, seq, seed=seed)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("scope", ["norms", "all"])
def test_smoothed_model_gives_the_baseline_logits(arch, scope):
    model = outlier_model(arch)
    if arch == "qwen2":
        assert model.model.layers[0].self_attn.q_proj.bias is not None, "Qwen2 should have q/k/v biases"
    stats = calibrate(model, ids())
    res = smooth_model(model, stats, alpha=0.5, scope=scope)
    x = ids(2, 24, seed=9)
    with torch.no_grad():
        base, smooth = model(x).logits, res.model(x).logits
    # the weights really changed (a fold that does nothing would pass the logits check trivially)
    w0 = model.model.layers[0].self_attn.q_proj.weight
    w1 = res.model.model.layers[0].self_attn.q_proj.weight
    assert (w1 - w0).abs().max() > 0.1 * w0.abs().max(), "smoothing left q_proj's weight (almost) unchanged"
    err = (smooth - base).abs().max().item()
    assert err < 1e-4 * base.abs().max().item(), (
        f"{arch}/{scope}: smoothed model's logits differ from the baseline by {err:.3g}; folding must be exact "
        "up to float rounding — check which side of each fold divides and which multiplies, and biases"
    )


def test_smoothing_is_pure():
    model = outlier_model("qwen2")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    smooth_model(model, calibrate(model, ids()), alpha=0.5)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"smooth_model changed the input model's {k}"


@pytest.mark.parametrize("arch", ARCHS)
def test_alpha_one_flattens_activations_alpha_zero_flattens_weights(arch):
    """α = 1 → s = act absmax: every smoothed input channel then has absmax exactly 1.
    α = 0 → s = 1 / max|W_j|: every smoothed weight column has absmax exactly 1."""
    model = outlier_model(arch)
    x = ids()
    stats = calibrate(model, x)
    flat = calibrate(smooth_model(model, stats, alpha=1.0).model, x)
    for name in linear_names(model):
        if name.endswith(("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "down_proj")):
            torch.testing.assert_close(flat[name], torch.ones_like(flat[name]), rtol=1e-4, atol=0, msg=name)
    # scope "norms": with "all", the v_proj → o_proj fold rescales v_proj's rows afterwards
    layer = smooth_model(model, stats, alpha=0.0, scope="norms").model.model.layers[0]
    w = torch.cat([layer.self_attn.q_proj.weight, layer.self_attn.k_proj.weight, layer.self_attn.v_proj.weight])
    torch.testing.assert_close(w.abs().amax(dim=0), torch.ones(w.shape[1]), rtol=1e-5, atol=0)


def test_gqa_fold_shares_factors_across_query_heads():
    model = outlier_model("qwen3")  # 4 query heads on 2 kv heads, head_dim 16
    res = smooth_model(model, calibrate(model, ids()), alpha=0.5)
    s = res.factors["model.layers.0.self_attn.v_proj"]
    assert s.shape == (2 * 16,)
    o0 = model.model.layers[0].self_attn.o_proj.weight
    o1 = res.model.model.layers[0].self_attn.o_proj.weight
    ratio = (o1 / o0)[0].reshape(4, 16)  # column scale of o_proj, per query head
    torch.testing.assert_close(ratio[0], ratio[1])  # heads 0, 1 share kv head 0
    torch.testing.assert_close(ratio[2], ratio[3])
    torch.testing.assert_close(ratio[0], s[:16])


def test_unknown_architecture_and_scope_fail_clearly():
    model = tiny_model("llama")
    model.config.model_type = "gpt2"
    with pytest.raises(ValueError, match="known: llama, qwen2, qwen3"):
        layer_map(model)
    assert set(LAYER_MAPS) == {"llama", "qwen2", "qwen3"}
    model = tiny_model("llama")
    with pytest.raises(ValueError, match="scope"):
        smooth_model(model, calibrate(model, ids(1, 4)), scope="everything")
