"""The checks of notebooks 06 and 09: the model answers score full marks, typical slips lose
points with a message, calling labkit's reference scores 0, and the references agree with labkit."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit.grading.model_checks import check_model, quantize_weight_reference
from labkit.quant import PerGroup, PerRow, PerTensor
from labkit.quant.primitives import choose_qparams, quantize

import re
import types
from pathlib import Path

import nbformat

SOURCE = Path(__file__).resolve().parents[2] / "autograde" / "source" / "hw4"


def _solutions(*stems: str) -> types.SimpleNamespace:
    """The source notebooks' solution cells, executed in one namespace (as in a kernel, with the
    setup cell's imports): the checks are tested on exactly the code the notebooks ship."""
    ns = {"torch": torch, "F": F, "nn": nn, "copy": copy, "PerGroup": PerGroup, "PerRow": PerRow,
          "PerTensor": PerTensor}
    for stem in stems:
        nb = nbformat.read(next(SOURCE.glob(f"{stem}_*.ipynb")), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
                src = re.sub(r"\n\s*### (BEGIN|END) SOLUTION", "", cell.source)
                src = re.sub(r"\n\s*raise NotImplementedError\(.*\)", "", src)
                exec(compile(src, f"<{stem} {cell.metadata['nbgrader']['grade_id']}>", "exec"), ns)
    return types.SimpleNamespace(**ns)


sol = _solutions("06", "09")

FULL = [("quantize_weight_int8", sol.quantize_weight, None), ("quantize_weight_fp8", sol.quantize_weight, None),
        ("weight_only_linear", sol.WeightOnlyLinear, None), ("swap_linears", sol.swap_linears, None),
        ("weight_only_pipeline", sol.swap_linears, sol.WeightOnlyLinear),
        ("quantize_int4_groups", sol.quantize_int4_groups, None), ("int4_kernel_inputs", sol.int4_kernel_inputs, None),
        ("collect_hessians", sol.collect_hessians, None), ("gptq_model", sol.gptq_model, None)]


@pytest.mark.parametrize("name,fn,module", FULL, ids=[f[0] for f in FULL])
def test_model_answers_score_full(name, fn, module, capsys):
    assert check_model(name, fn, seed=11, points=3, module=module) == 3.0
    assert "3/3 points" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["int8", "fp8_e4m3"])
@pytest.mark.parametrize("gran", [PerTensor(), PerRow(), PerGroup(64), PerGroup(48)])
def test_reference_equals_labkit_quant(fmt, gran):
    w = torch.randn(24, 200, generator=torch.Generator().manual_seed(2)) * 0.1
    w[3] = 0.0
    codes, scale = quantize_weight_reference(w, fmt, gran)
    qp = choose_qparams(w, fmt, gran)
    assert torch.equal(scale, qp.scale.float())
    assert torch.equal(codes.float(), quantize(w, qp).float())


def scale_128(w, fmt, granularity):
    codes, scale = sol.quantize_weight(w, fmt, granularity)
    qmax = 127.0 if fmt == "int8" else 448.0
    return codes, scale * qmax / (qmax + 1)




def test_slips_lose_points_with_the_likely_cause(capsys):
    assert check_model("quantize_weight_int8", scale_128, seed=1, points=3) == 0.0
    out = capsys.readouterr().out
    assert "0/3 points" in out and "max|block| / 127" in out


def test_calling_labkit_scores_zero(capsys):
    def via_labkit(w, fmt, granularity):
        qp = choose_qparams(w, fmt, granularity)
        return quantize(w, qp), qp.scale

    assert check_model("quantize_weight_int8", via_labkit, seed=1, points=3) == 0.0
    assert "calls labkit's reference" in capsys.readouterr().out

    def swap_via_labkit(model, make_layer, include_lm_head=False):
        from labkit.nn import quantize_model
        return quantize_model(model, "int8-row", quantizer=lambda lin, s, m: make_layer(lin),
                              include_lm_head=include_lm_head).model

    assert check_model("swap_linears", swap_via_labkit, seed=1, points=2) == 0.0
    assert "calls labkit's reference" in capsys.readouterr().out

    def int4_via_labkit(w, group_size):
        from labkit.nn.int4 import quantize_int4
        return quantize_int4(w, group_size)

    assert check_model("quantize_int4_groups", int4_via_labkit, seed=1, points=2) == 0.0


def test_linear_real_mode_with_a_float_copy_fails(capsys):
    class KeepsFloat(sol.WeightOnlyLinear):
        def __init__(self, linear, fmt, granularity, mode):
            super().__init__(linear, fmt, granularity, mode)
            self.register_buffer("w_float", linear.weight.detach().clone())

    score = check_model("weight_only_linear", KeepsFloat, seed=2, points=3)
    assert score == pytest.approx(3 * 2 / 6)       # the two fake-mode cases only
    assert "float tensor as large as the weight" in capsys.readouterr().out


def test_swap_that_misses_or_mutates(capsys):
    def in_place(model, make_layer, include_lm_head=False):
        return sol.swap_linears(model, make_layer, include_lm_head) and _mutating(model, make_layer)

    def _mutating(model, make_layer):
        for name, m in list(model.named_modules()):
            if isinstance(m, nn.Linear) and name != "lm_head":
                parent, _, child = name.rpartition(".")
                setattr(model.get_submodule(parent), child, make_layer(m))
        return copy.deepcopy(model)

    assert check_model("swap_linears", in_place, seed=1, points=2) == 0.0
    assert "input model changed" in capsys.readouterr().out

    def untouched(model, make_layer, include_lm_head=False):
        return copy.deepcopy(model)

    assert check_model("swap_linears", untouched, seed=1, points=2) == 0.0
    assert "refused" in capsys.readouterr().out


def test_pipeline_refuses_an_untouched_model(capsys):
    def untouched(model, make_layer, include_lm_head=False):
        return copy.deepcopy(model)

    assert check_model("weight_only_pipeline", untouched, seed=0, points=2, module=sol.WeightOnlyLinear) == 0.0
    assert "refused" in capsys.readouterr().out


def test_hessian_mean_instead_of_sum(capsys):
    def mean_h(model, windows, names):
        return tuple(h / (windows.numel()) for h in sol.collect_hessians(model, windows, names))

    assert check_model("collect_hessians", mean_h, seed=0, points=3) == 0.0
    assert "a sum over every token" in capsys.readouterr().out


def test_gptq_model_that_skips_a_layer(capsys):
    def skips(model, hessians, group_size, layer_gptq):
        return sol.gptq_model(model, dict(list(hessians.items())[:-1]), group_size, layer_gptq)

    assert check_model("gptq_model", skips, seed=0, points=3) == 0.0
    assert "called 2 times for 3 layers" in capsys.readouterr().out


def test_unwritten_stub_prints_one_line(capsys):
    def stub(w, group_size):
        raise NotImplementedError("Task 9.1: quantize_int4_groups")

    assert check_model("quantize_int4_groups", stub, seed=0, points=2) == 0.0
    assert "not written yet" in capsys.readouterr().out


def test_linear_that_guesses_the_group_width_fails_on_a_shorter_last_group(capsys):
    class CeilWidth(sol.WeightOnlyLinear):          # g taken as ceil(K / G): wrong when the last group is short
        def dequantize(self, codes, scale):
            if scale.ndim == 2:
                k = self.shape[1]
                return codes.float() * scale.repeat_interleave(-(-k // scale.shape[1]), dim=1)[:, :k]
            return super().dequantize(codes, scale)

    score = check_model("weight_only_linear", CeilWidth, seed=3, points=3)
    assert score == pytest.approx(3 * 4 / 6)        # K = 80 (groups of 32) and K = 160 (groups of 64) fail
    assert "output differs from x·Ŵᵀ + b" in capsys.readouterr().out


def test_gptq_model_calling_labkits_full_gptq_scores_zero(capsys):
    """9.4 may call the ``layer_gptq`` it is handed (labkit's GPTQ inside), not ``labkit.quant.gptq_full``
    itself — even when it also calls the helper once per layer, so the call count looks right."""
    from labkit.quant import gptq_full

    def via_gptq_full(model, hessians, group_size, layer_gptq):
        new = copy.deepcopy(model)
        with torch.no_grad():
            for name, H in hessians.items():
                layer = new.get_submodule(name)
                layer_gptq(layer.weight.detach().clone(), H, group_size)      # the count looks right
                w_hat = gptq_full.gptq_quantize_hessian(layer.weight.detach(), H, 4, PerGroup(group_size)).weight
                layer.weight.copy_(w_hat)
        return new

    assert check_model("gptq_model", via_gptq_full, seed=0, points=3) == 0.0
    out = capsys.readouterr().out
    assert "calls labkit's reference" in out and "gptq_full.gptq_quantize_hessian" in out
    assert check_model("gptq_model", sol.gptq_model, seed=0, points=3) == 3.0      # the helper alone is allowed
    assert "3/3 points" in capsys.readouterr().out


def test_gptq_model_calling_labkits_loop_scores_zero(capsys):
    """Notebook 09's setup imports labkit's loop (the fallback of later cells): calling it is a reference call."""
    from labkit.grading.model_checks import gptq_model_reference

    def via_labkit_loop(model, hessians, group_size, layer_gptq):
        return gptq_model_reference(model, hessians, group_size, layer_gptq)

    assert check_model("gptq_model", via_labkit_loop, seed=0, points=3) == 0.0
    assert "calls labkit's reference (labkit.grading.model_checks.gptq_model_reference)" in capsys.readouterr().out


def test_hessians_through_labkits_hook_loop_score_zero(capsys):
    """9.3 asks for the hooks: labkit's hook loop (labkit.grading.hooks) with a hand-written update is a reference call."""
    from labkit.grading.hooks import observe_linear_inputs

    def via_labkit_hooks(model, windows, names):
        acc = {}

        def update(name, x):
            acc[name] = acc.get(name, 0) + 2.0 * (x.float().T @ x.float())

        observe_linear_inputs(model, windows, names, update)
        return tuple(acc[n] for n in names)

    assert check_model("collect_hessians", via_labkit_hooks, seed=0, points=3) == 0.0
    assert "labkit.grading.hooks.observe_linear_inputs" in capsys.readouterr().out


def test_layer_dequantizing_with_labkits_helpers_scores_zero(capsys):
    """6.2's dequantize is the student's: labkit's dequantize_reference / expand_scale inside it are reference calls."""
    from labkit.grading.model_checks import dequantize_reference, expand_scale

    class ViaDequantize(sol.WeightOnlyLinear):
        def dequantize(self, codes, scale):
            return dequantize_reference(codes, scale, self.group_size)

    class ViaExpand(sol.WeightOnlyLinear):
        def dequantize(self, codes, scale):
            return codes.float() * expand_scale(scale, self.shape, self.group_size)

    assert check_model("weight_only_linear", ViaExpand, seed=0, points=3) == 0.0
    assert "labkit.grading.model_checks.expand_scale" in capsys.readouterr().out
    assert check_model("weight_only_pipeline", sol.swap_linears, seed=0, points=2, module=ViaDequantize) == 0.0
    assert "labkit.grading.model_checks.dequantize_reference" in capsys.readouterr().out

