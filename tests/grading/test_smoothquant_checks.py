"""The notebook-08 checks: right answers (written here independently of labkit) score full, typical
slips lose points with a hint, and calls to labkit's references score 0."""

import copy

import pytest
import torch
from torch import nn

from labkit.grading.smoothquant_checks import calibrate_reference, check_sq, layer_folds, script_or_reference
from labkit.models.calibration import calibrate
from labkit.models.tiny import tiny_model
from labkit.models.w8a8 import torchao_smoothquant_int8
from labkit.nn import quantize_model


def factors_right(act, w, alpha=0.5):
    s = act.clamp_min(1e-30) ** alpha / w.clamp_min(1e-30) ** (1 - alpha)
    return torch.where((act > 0) & (w > 0), s, torch.ones_like(s))


def factors_alpha_swapped(act, w, alpha=0.5):
    ok = (act > 0) & (w > 0)
    return torch.where(ok, act.clamp_min(1e-30) ** (1 - alpha) / w.clamp_min(1e-30) ** alpha, torch.ones_like(act))


def calibrate_right(model, windows, names):
    found = dict(model.named_modules())
    out = {}
    hooks = []
    for n in names:
        def hook(mod, args, n=n):
            m = args[0].detach().abs().flatten(0, -2).max(dim=0).values.float()
            out[n] = m if n not in out else torch.maximum(out[n], m)
        hooks.append(found[n].register_forward_pre_hook(hook))
    with torch.no_grad():
        for w in windows:
            model(input_ids=w.unsqueeze(0))
    for h in hooks:
        h.remove()
    return tuple(out[n] for n in names)


def calibrate_last_window_only(model, windows, names):
    return calibrate_right(model, windows[-1:], names)


def calibrate_with_labkit(model, windows, names):
    stats = calibrate(model, windows, names)
    return tuple(stats[n] for n in names)


def fold_right(norm_weight, weight, act_absmax, alpha=0.5):
    s = smoothing_factors(act_absmax, weight.abs().max(dim=0).values, alpha)
    return s, norm_weight / s, weight * s


def fold_rows(norm_weight, weight, act_absmax, alpha=0.5):       # scales the output rows: changes the layer
    s = smoothing_factors(act_absmax, weight.abs().max(dim=0).values, alpha)
    return s, norm_weight / s, weight * s[: weight.shape[0], None] if weight.shape[0] <= s.numel() else weight


smoothing_factors = factors_right   # what the notebook's globals hold; the check swaps in labkit's


def fp8_script(model, calib, alpha):
    m = copy.deepcopy(model)
    names = [n for n, mod in m.named_modules() if isinstance(mod, nn.Linear) and ".layers." in n]
    stats = dict(zip(names, calibrate_absmax(m, calib, names)))
    owner = {id(mod): n for n, mod in m.named_modules()}
    with torch.no_grad():
        for norm, linears in layer_folds(m):
            w = torch.cat([lin.weight for lin in linears])
            _, nw, w2 = fold_smoothing(norm.weight, w, stats[owner[id(linears[0])]], alpha)
            norm.weight.copy_(nw)
            for lin, part in zip(linears, w2.split([lin.out_features for lin in linears])):
                lin.weight.copy_(part)
    return quantize_model(m, "w8a8-fp8").model


calibrate_absmax, fold_smoothing = calibrate_right, fold_right


def fp8_no_smoothing(model, calib, alpha):
    return quantize_model(model, "w8a8-fp8").model


def fp8_labkit_pipeline(model, calib, alpha):
    from labkit.schemes import SmoothQuant
    return quantize_model(model, SmoothQuant(fmt="fp8_e4m3", alpha=alpha, scope="norms")).model


def int8_torchao(model, calib, alpha):
    from torchao.prototype.smoothquant import SmoothQuantConfig
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    m = copy.deepcopy(model)
    names = {n for n, mod in m.named_modules() if isinstance(mod, nn.Linear) and ".layers." in n}
    keep = lambda mod, fqn: fqn in names
    cfg = lambda step: SmoothQuantConfig(base_config=Int8DynamicActivationInt8WeightConfig(), step=step, alpha=alpha,
                                         use_running_absmax=True)
    quantize_(m, cfg("prepare"), filter_fn=keep)
    with torch.no_grad():
        for row in calib:
            m(input_ids=row[None])
    quantize_(m, cfg("convert"), filter_fn=keep)
    return m


def int8_with_labkit(model, calib, alpha):
    return torchao_smoothquant_int8(model, calib, alpha=alpha).model


def search_right(evaluate, alphas, baseline_ppl, target=0.01):
    seen = []
    for a in alphas:
        p = evaluate(a)
        seen.append((p, a))
        if p <= baseline_ppl * (1 + target):
            return a, p
    p, a = min(seen)
    return a, p


def search_argmin(evaluate, alphas, baseline_ppl, target=0.01):
    p, a = min((evaluate(a), a) for a in alphas)
    return a, p


def test_calibration_reference_agrees_with_labkit():
    m = tiny_model("qwen2", seed=3)
    windows = torch.randint(0, m.config.vocab_size, (3, 16), generator=torch.Generator().manual_seed(0))
    names = ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"]
    stats = calibrate(m, windows, names)
    for n, t in zip(names, calibrate_reference(m, windows, names)):
        torch.testing.assert_close(t, stats[n])


def test_right_answers_score_full(capsys):
    assert check_sq("smoothing_factors", factors_right, seed=3, points=2) == 2.0
    assert check_sq("calibrate_absmax", calibrate_right, seed=3, points=3) == 3.0
    assert check_sq("fold_smoothing", fold_right, seed=3, points=3) == 3.0
    assert check_sq("alpha_search", search_right, seed=3, points=2) == 2.0
    assert "✗" not in capsys.readouterr().out


@pytest.mark.slow
def test_scripts_score_full_and_later_cells_use_them(capsys):
    assert check_sq("smoothquant_fp8", fp8_script, seed=0, points=3) == 3.0
    assert check_sq("smoothquant_int8_torchao", int8_torchao, seed=0, points=3) == 3.0
    assert script_or_reference("smoothquant_fp8", fp8_script) is fp8_script
    assert "✗" not in capsys.readouterr().out
    assert check_sq("smoothquant_fp8", fp8_no_smoothing, seed=0, points=3) < 3
    assert check_sq("smoothquant_fp8", fp8_labkit_pipeline, seed=0, points=3) == 0
    assert check_sq("smoothquant_int8_torchao", int8_with_labkit, seed=0, points=3) == 0
    assert "calls labkit's reference" in capsys.readouterr().out
    assert script_or_reference("smoothquant_fp8", fp8_no_smoothing) is not fp8_no_smoothing


def test_slips_lose_points_with_a_message(capsys):
    assert check_sq("smoothing_factors", factors_alpha_swapped, seed=0, points=2) == pytest.approx(2 * 2 / 5)
    assert "✗ α = 0.8" in capsys.readouterr().out
    assert check_sq("calibrate_absmax", calibrate_last_window_only, seed=0, points=3) < 3
    assert "every window" in capsys.readouterr().out
    assert check_sq("fold_smoothing", fold_rows, seed=0, points=3) == 0
    assert "columns" in capsys.readouterr().out
    assert check_sq("alpha_search", search_argmin, seed=0, points=2) < 2
    with pytest.raises(KeyError, match="known"):
        check_sq("nope", factors_right)


def test_calling_labkit_scores_zero(capsys):
    assert check_sq("calibrate_absmax", calibrate_with_labkit, seed=0, points=3) == 0
    assert "calls labkit's reference" in capsys.readouterr().out



def test_scripts_calling_labkits_scripts_score_zero(capsys):
    """8.4/8.5 may call quantize_model and torchao, not labkit's whole script (labkit.grading's references)."""
    from labkit.grading.smoothquant_checks import smoothquant_fp8_reference, smoothquant_int8_torchao_reference

    def fp8_via_labkit(model, calib, alpha=0.5):
        return smoothquant_fp8_reference(model, calib, alpha)

    def int8_via_labkit(model, calib, alpha=0.5):
        return smoothquant_int8_torchao_reference(model, calib, alpha)

    assert check_sq("smoothquant_fp8", fp8_via_labkit, seed=0, points=3) == 0
    assert "calls labkit's reference (labkit.grading.smoothquant_checks.smoothquant_fp8_reference" in \
        capsys.readouterr().out
    assert check_sq("smoothquant_int8_torchao", int8_via_labkit, seed=0, points=3) == 0
    assert "calls labkit's reference" in capsys.readouterr().out


def test_calibration_through_labkits_hook_loop_scores_zero(capsys):
    """8.1 asks for the hooks: labkit's hook loop (labkit.grading.hooks) with a hand-written update is a reference call."""
    from labkit.grading.hooks import observe_linear_inputs

    def via_labkit_hooks(model, windows, names):
        acc = {}

        def update(name, x):
            m = x.abs().amax(dim=0).float()
            acc[name] = m if name not in acc else torch.maximum(acc[name], m)

        observe_linear_inputs(model, windows, names, update)
        return tuple(acc[n] for n in names)

    assert check_sq("calibrate_absmax", via_labkit_hooks, seed=0, points=3) == 0
    assert "labkit.grading.hooks.observe_linear_inputs" in capsys.readouterr().out

