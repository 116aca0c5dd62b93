"""Calibration records per-channel input absmax of every linear, exactly, and leaves no hooks behind."""

import pytest
import torch

from labkit.models.calibration import ActivationStats, calibrate, calibration_windows
from labkit.models.layer_maps import linear_names
from labkit.models.tiny import tiny_model


def test_matches_inputs_captured_independently():
    model = tiny_model("qwen3")
    ids = calibration_windows(torch.randint(1, 320, (500,), generator=torch.Generator().manual_seed(0)), 3, 20)
    stats = calibrate(model, ids)
    assert isinstance(stats, ActivationStats) and stats.tokens == 60 and stats.sequences == 3
    # the reference: keep the whole inputs of two linears, reduce afterwards
    seen = {"model.layers.1.mlp.down_proj": [], "model.layers.0.self_attn.q_proj": []}
    handles = [model.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: seen[n].append(a[0]))
               for n in seen]
    with torch.no_grad():
        for row in ids:
            model(row[None])
    for h in handles:
        h.remove()
    for name, xs in seen.items():
        ref = torch.cat([x.reshape(-1, x.shape[-1]) for x in xs]).abs().amax(dim=0)
        assert torch.equal(stats[name], ref), f"{name}: calibration absmax differs from the captured inputs' absmax"
    assert set(linear_names(model)) <= set(stats.absmax)
    assert not any(m._forward_pre_hooks for m in model.modules()), "calibration left hooks on the model"


def test_windows_are_seeded_and_inside_the_stream():
    stream = torch.arange(1000)
    a = calibration_windows(stream, 4, 50, seed=1)
    assert torch.equal(a, calibration_windows(stream, 4, 50, seed=1))
    assert not torch.equal(a, calibration_windows(stream, 4, 50, seed=2))
    assert torch.equal(a[:, 1:] - a[:, :-1], torch.ones(4, 49, dtype=a.dtype)), "windows must be contiguous"
    with pytest.raises(ValueError, match="fewer than one window"):
        calibration_windows(stream[:10], 1, 50)


def test_errors_name_the_problem():
    model = tiny_model("llama")
    with pytest.raises(ValueError, match=r"\(n, seq\)"):
        calibrate(model, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="not nn.Linear"):
        calibrate(model, torch.ones(1, 4, dtype=torch.long), names=["model.layers.0.input_layernorm"])
    stats = calibrate(model, torch.ones(1, 4, dtype=torch.long))
    with pytest.raises(KeyError, match="calibrated"):
        stats["model.layers.9.mlp.up_proj"]
