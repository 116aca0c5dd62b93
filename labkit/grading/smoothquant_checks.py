"""Checks for the fill-ins of notebook 08 (SmoothQuant W8A8 in INT8 and FP8 on a real model).

Six exercises, graded by the one case engine (``labkit.grading.cases``) on tiny seeded models
(``labkit.models.tiny``) so each runs in seconds:

* ``calibrate_absmax(model, windows, names)`` → a tuple of ``(in_features,)`` float32 tensors, one
  per name: the max |x| of each input channel of each named linear over every token of every
  calibration window, collected with forward (pre-)hooks. Reference: a hook loop written here,
  tested against ``labkit.models.calibration.calibrate``. Calling that (or anything in
  ``labkit.models``, or labkit's hook loop ``labkit.grading.hooks.observe_linear_inputs``) scores 0.
* ``smoothing_factors(act_absmax, weight_absmax, alpha)`` — ``s = act^α / w^(1−α)``, 1.0 where either
  maximum is 0 (reference ``labkit.quant.smoothquant.smooth_factors``).
* ``fold_smoothing(norm_weight, weight, act_absmax, alpha)`` → ``(s, norm_weight / s, weight · s)``
  for an RMSNorm weight ``(dim,)`` and the weights of the linears it feeds stacked along the output
  axis ``(out, dim)``; ``s`` from the maxima of the activations and of the stacked weight's columns.
  Besides the values, a part checks what folding promises: ``RMSNorm(x)·Wᵀ`` is unchanged to 1e-5.
  The student's ``smoothing_factors`` is replaced by labkit's while this is graded.
* ``smoothquant_int8_torchao(model, calib, alpha)`` → a W8A8 INT8 model from torchao's
  ``SmoothQuantConfig`` (prepare → calibrate → convert) on the decoder linears. Graded by
  ``smoothquant_int8_torchao_ppl``: its perplexity on fixed windows must be within 0.5 % of labkit's
  TorchAO path (``labkit.models.w8a8.torchao_smoothquant_int8``), and at least one linear must
  quantize its activations.
* ``smoothquant_fp8(model, calib, alpha)`` → calibrate (8.1), fold at every RMSNorm (8.3), then
  ``labkit.nn.quantize_model(smoothed, "w8a8-fp8")``. Graded the same way against
  ``quantize_model(model, SmoothQuant("fp8_e4m3", alpha, scope="norms"))`` (labkit's one pipeline).
  The student's 8.1/8.3 are replaced by labkit's while this is graded.
* ``alpha_search(evaluate, alphas, baseline_ppl, target)`` → ``(alpha, ppl)``: the *smallest* α of the
  grid whose perplexity is within ``target`` (relative) of the baseline; if none is, the α with the
  lowest perplexity (the first on a tie). ``evaluate`` is called at most once per α.

The model-valued fill-ins (8.4, 8.5) are graded through an *adapter* (``as_perplexity``) that calls
the student's function and returns numbers, so the engine's tripwire watches the student's call and
the answer record holds numbers the grader's process can re-check. Limits, stated: the tripwire of
8.4/8.5 watches ``labkit.models`` (the references, the SmoothQuant preparer, calibration and
smoothing) and labkit's two scripts here (``smoothquant_*_reference``, callable only from labkit:
``integrity.via_labkit``); the W8A8 handler that ``quantize_model`` reaches there is allowed.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from ..quant import smoothquant as _sq
from .cases import CaseCheck, Score, grade, passed, register
from .compare import GradingError, compare_floats
from .hooks import observe_linear_inputs
from .integrity import freeze_module, via_labkit
from .model_checks import _ppl, _tiny, lent
from .model_checks import _windows as _token_windows

_TASKS = {"calibrate_absmax": "Task 8.1", "smoothing_factors": "Task 8.2", "fold_smoothing": "Task 8.3",
          "smoothquant_int8_torchao": "Task 8.4", "smoothquant_fp8": "Task 8.5", "alpha_search": "Task 8.6"}
PPL_RTOL = 0.005


# -- references ----------------------------------------------------------------------------------

def calibrate_reference(model: nn.Module, windows: torch.Tensor, names: list[str]) -> tuple[torch.Tensor, ...]:
    """Per-channel input max|x| of each named linear over all windows (forward pre-hooks, removed after)."""
    seen: dict[str, torch.Tensor] = {}

    def update(name, x):
        m = x.abs().amax(dim=0).float()
        seen[name] = m if name not in seen else torch.maximum(seen[name], m)

    observe_linear_inputs(model, windows, names, update)
    return tuple(seen[n] for n in names)


def fold_reference(norm_weight: torch.Tensor, weight: torch.Tensor, act_absmax: torch.Tensor, alpha: float = 0.5):
    s = _sq.smooth_factors(act_absmax, weight.detach().abs().amax(dim=0), alpha)
    return s, _sq.fold_into_norm(norm_weight, s), _sq.fold_into_linear(weight, s)


def alpha_search_reference(evaluate: Callable[[float], float], alphas, baseline_ppl: float, target: float = 0.01):
    ppls = [float(evaluate(a)) for a in alphas]
    for a, p in zip(alphas, ppls):
        if p <= baseline_ppl * (1 + target):
            return float(a), p
    best = min(range(len(ppls)), key=lambda i: (ppls[i], i))
    return float(alphas[best]), ppls[best]


def layer_folds(model: nn.Module) -> list[tuple[nn.Module, list[nn.Linear]]]:
    """(RMSNorm, [the linears it feeds]) for every decoder layer of a Llama/Qwen2/Qwen3 model."""
    folds = []
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        folds.append((layer.input_layernorm, [attn.q_proj, attn.k_proj, attn.v_proj]))
        folds.append((layer.post_attention_layernorm, [mlp.gate_proj, mlp.up_proj]))
    return folds


def smoothquant_fp8_reference(model: nn.Module, calib: torch.Tensor, alpha: float = 0.5) -> nn.Module:
    """labkit's path: calibrate, fold at the norms with labkit's references, then W8A8 FP8."""
    from ..nn import quantize_model

    target = copy.deepcopy(model)
    names = [n for n, m in target.named_modules() if isinstance(m, nn.Linear) and ".layers." in n]
    stats = dict(zip(names, calibrate_reference(target, calib, names)))
    by_module = {id(m): n for n, m in target.named_modules()}
    with torch.no_grad():
        for norm, linears in layer_folds(target):
            w = torch.cat([lin.weight for lin in linears], dim=0)
            _, nw, w2 = fold_reference(norm.weight, w, stats[by_module[id(linears[0])]], alpha)
            norm.weight.copy_(nw)
            for lin, part in zip(linears, torch.split(w2, [lin.out_features for lin in linears], dim=0)):
                lin.weight.copy_(part)
    return quantize_model(target, "w8a8-fp8").model


def smoothquant_int8_torchao_reference(model: nn.Module, calib: torch.Tensor, alpha: float = 0.5) -> nn.Module:
    from ..models.w8a8 import torchao_smoothquant_int8

    return torchao_smoothquant_int8(model, calib, alpha=alpha).model


# -- the adapter for model-valued fill-ins -------------------------------------------------------

_ADAPTERS: dict[tuple[str, int], Callable] = {}
_SCRIPT_DEPS = {"smoothquant_fp8": {"calibrate_absmax": calibrate_reference, "fold_smoothing": fold_reference,
                                    "smoothing_factors": _sq.smooth_factors}}


def _act_quantized(model: nn.Module) -> int:
    """Linears that quantize their activations: labkit's W8A8Linear or a torchao tensor subclass weight."""
    n = 0
    for m in model.modules():
        if type(m).__name__ == "W8A8Linear":
            n += 1
        elif isinstance(m, nn.Linear) and getattr(m.weight, "act_quant_kwargs", None) is not None:
            n += 1
    return n


def as_perplexity(name: str, fn: Callable) -> Callable:
    """``fn(model, calib, alpha) -> model`` as ``(model, calib, alpha, windows) -> (ppl, act-quantized linears)``;
    the same adapter object for the same ``fn`` (the engine remembers a result per function)."""
    key = (name, id(fn))
    if key not in _ADAPTERS:
        def adapter(model, calib, alpha, windows):
            # labkit's 8.1-8.3 while a script is graded: a slip there costs only its points
            with lent(getattr(fn, "__globals__", {}), _SCRIPT_DEPS.get(name, {})):
                out = fn(model, calib, alpha)
            if not isinstance(out, nn.Module):
                raise GradingError(f"{name} must return the quantized model (an nn.Module), got {type(out).__name__}")
            if out is model:
                raise GradingError(f"{name} returned the model it was given: quantize a copy (copy.deepcopy(model))")
            return _ppl(out, windows), float(_act_quantized(out))
        adapter.__qualname__ = adapter.__name__ = name
        adapter.student_fn = fn
        _ADAPTERS[key] = adapter
    return _ADAPTERS[key]


def _script_reference(build: Callable) -> Callable:
    def reference(model, calib, alpha, windows):
        out = build(model, calib, alpha)
        return _ppl(out, windows), float(_act_quantized(out))
    return reference


# -- cases -----------------------------------------------------------------------------------------

def _windows(model: nn.Module, n: int, seq: int, seed: int) -> torch.Tensor:
    return _token_windows(model.config.vocab_size, n, seq, seed)


_NAMES = ("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.down_proj",
          "model.layers.1.mlp.gate_proj")


def _calib_cases(seed: int):
    cases = []
    for arch, n, seq in (("qwen2", 2, 16), ("llama", 3, 8), ("qwen3", 1, 24)):
        m = _tiny(arch, seed)
        cases.append((f"tiny {arch}, {n} windows of {seq} tokens", {"model": m, "windows": _windows(m, n, seq, seed),
                                                                     "names": list(_NAMES)}))
    return cases


def _calib_compare(got, ref, args) -> None:
    for name, g, r in zip(args["names"], got, ref):
        if not isinstance(g, torch.Tensor):
            raise GradingError(f"{name}: expected a torch tensor, got {type(g).__name__}\n  → return one (in_features,) "
                               "tensor per name, in the order of names")
        if tuple(g.shape) != tuple(r.shape):
            raise GradingError(f"{name}: expected shape {tuple(r.shape)} (one value per input channel), got "
                               f"{tuple(g.shape)}\n  → hook the linear's input, reduce over every axis but the last")
        if g.dtype != torch.float32:
            raise GradingError(f"{name}: expected float32, got {g.dtype}")
        try:
            compare_floats(name, g.detach().numpy(), r.numpy(), rtol=1e-5, atol=1e-6)
        except GradingError as exc:
            raise GradingError(f"{exc}\n  → keep a running maximum of |x| per input channel over every token of "
                               "every window (torch.maximum)") from None


def _factor_cases(seed: int):
    gen = torch.Generator().manual_seed(seed)
    worked = (torch.tensor([4.0, 1.0, 0.0]), torch.tensor([1.0, 0.25, 2.0]), 0.5)
    act = torch.rand(64, generator=gen) * 10
    act[[3, 9]] = 0.0
    w = torch.rand(64, generator=gen) * 0.3
    w[5] = 0.0
    return [("worked example, α = 0.5", worked), ("64 channels with zeros, α = 0.5", (act, w, 0.5)),
            ("α = 0.8", (act, w, 0.8)), ("α = 0.0", (act, w, 0.0)), ("α = 1.0", (act, w, 1.0))]


def _factor_compare(got, ref, args) -> None:
    if not isinstance(got, torch.Tensor):
        raise GradingError(f"expected a torch tensor, got {type(got).__name__}")
    if got.dtype != torch.float32 or tuple(got.shape) != tuple(ref.shape):
        raise GradingError(f"expected float32 {tuple(ref.shape)}, got {got.dtype} {tuple(got.shape)}"
                           "\n  → one factor per channel, converted with .float()")
    try:
        compare_floats("s", got.detach().numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    except GradingError as exc:
        raise GradingError(f"{exc}\n  → s = act**alpha / w**(1 - alpha); 1.0 where act or w is 0 (torch.where)") from None


def _fold_cases(seed: int):
    gen = torch.Generator().manual_seed(seed)
    worked = (torch.tensor([1.0, 2.0, 0.5]), torch.tensor([[0.5, -1.0, 0.25], [0.1, 0.5, -2.0]]),
              torch.tensor([8.0, 1.0, 0.0]), 0.5)
    dim = 32
    act = torch.rand(dim, generator=gen) * 3
    act[4] = 60.0                                            # an outlier channel
    act[9] = 0.0                                             # a channel never used
    norm_w = torch.rand(dim, generator=gen) + 0.5
    w = torch.randn(48, dim, generator=gen) * 0.05
    m = _tiny("qwen2", seed)
    layer = m.model.layers[0]
    qkv = torch.cat([layer.self_attn.q_proj.weight, layer.self_attn.k_proj.weight, layer.self_attn.v_proj.weight]).detach()
    act_m = torch.rand(qkv.shape[1], generator=gen) * 5
    return [("worked example, α = 0.5", worked), ("32 channels, an outlier and a dead channel, α = 0.5",
                                                  (norm_w, w, act, 0.5)),
            ("same, α = 0.85", (norm_w, w, act, 0.85)),
            ("tiny qwen2 layer 0: input norm → q, k, v stacked", (layer.input_layernorm.weight.detach(), qkv, act_m, 0.6))]


def _fold_compare(got, ref, args) -> None:
    s, nw, w = got
    rs, rnw, rw = ref
    for label, g, r in (("s", s, rs), ("norm_weight", nw, rnw), ("weight", w, rw)):
        if not isinstance(g, torch.Tensor) or tuple(g.shape) != tuple(r.shape):
            got_desc = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
            raise GradingError(f"{label}: expected a tensor of shape {tuple(r.shape)}, got {got_desc}")
    norm_weight, weight = args[0], args[1]
    x = torch.randn(16, norm_weight.shape[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    xn = x / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()
    before = (xn * norm_weight.double()) @ weight.double().T
    after = (xn * nw.detach().double()) @ w.detach().double().T
    change = ((after - before).norm() / before.norm()).item()
    if not change <= 1e-5:
        raise GradingError(f"folding changed the layer's output by {change:.2g} (relative): divide the norm's weight "
                           "by s and multiply the weight's *columns* (input channels) by s, so the two cancel")
    try:
        compare_floats("s", s.detach().float().numpy(), rs.numpy(), rtol=1e-5, atol=1e-6)
    except GradingError as exc:
        raise GradingError(f"{exc}\n  → the weight maxima are per input channel over the whole stacked weight "
                           "(every linear the norm feeds): |W| max over dim 0") from None
    compare_floats("weight", w.detach().float().numpy(), rw.numpy(), rtol=1e-5, atol=1e-7)


def _script_cases(seed: int):
    cases = []
    arch, alpha = (("qwen2", 0.5), ("llama", 0.75))[seed % 2]     # one tiny model per check: torchao is slow to set up
    for arch, alpha in ((arch, alpha),):
        m = _tiny(arch, seed)
        cases.append((f"tiny {arch}, α = {alpha}", {"model": m, "calib": _windows(m, 4, 32, seed + 1),
                                                     "alpha": alpha, "windows": _windows(m, 4, 32, seed + 2)}))
    return cases


def _script_compare(got, ref, args) -> None:
    ppl, n = float(got[0]), float(got[1])
    ref_ppl, ref_n = float(ref[0]), float(ref[1])
    if n < 1:
        raise GradingError("no linear quantizes its activations: the quantization did not run (prepare → calibrate "
                           "→ convert, or quantize_model after the fold)")
    if not abs(ppl - ref_ppl) <= PPL_RTOL * ref_ppl:
        raise GradingError(f"perplexity {ppl:.4f}, labkit's path gives {ref_ppl:.4f} (must be within {PPL_RTOL:.1%})"
                           "\n  → same α, the calibration windows you were given, every decoder linear (not lm_head)")


class _Curve:
    """A deterministic perplexity curve over α for the α-search cases; counts its calls."""

    def __init__(self, values: dict[float, float]):
        self.values, self.calls = values, 0

    def __call__(self, alpha: float) -> float:
        self.calls += 1
        return self.values[round(float(alpha), 6)]


def _search_cases(seed: int):
    gen = torch.Generator().manual_seed(seed)
    grid = [0.0, 0.25, 0.5, 0.75, 1.0]

    def curve(ppls):
        return _Curve({a: float(p) for a, p in zip(grid, ppls)})

    noise = (torch.rand(5, generator=gen) * 0.01).tolist()
    u = [10.9 + n for n in (0.4, 0.1, 0.02, 0.05, 0.3)]
    return [("worked example: target met from α = 0.5", {"evaluate": curve([11.3, 11.0, 10.92, 10.95, 11.2]),
                                                         "alphas": grid, "baseline_ppl": 10.82, "target": 0.01}),
            ("target never met: the lowest perplexity", {"evaluate": curve([12.5, 12.1, 12.3, 12.0, 12.9]),
                                                         "alphas": grid, "baseline_ppl": 10.0, "target": 0.01}),
            ("a tie at the minimum: the smaller α", {"evaluate": curve([12.5, 12.0, 12.0, 12.2, 12.9]),
                                                     "alphas": grid, "baseline_ppl": 10.0, "target": 0.05}),
            ("met already at α = 0", {"evaluate": curve([10.1, 10.0, 10.05, 10.2, 10.4]), "alphas": grid,
                                      "baseline_ppl": 10.0, "target": 0.02}),
            ("seeded curve, target 0.5 %", {"evaluate": curve([p + n for p, n in zip(u, noise)]), "alphas": grid,
                                            "baseline_ppl": 10.9, "target": 0.005})]


def _search_compare(got, ref, args) -> None:
    a, p = (float(v) for v in got)
    if a != ref[0] or abs(p - ref[1]) > 1e-9:
        raise GradingError(f"expected α = {ref[0]:g} (ppl {ref[1]:.4f}), got α = {a:g} (ppl {p:.4f})\n  → walk the "
                           "grid from the smallest α; the first α within baseline·(1 + target) wins; if none is, the "
                           "lowest perplexity (the smaller α on a tie)")


def _fp8_reference(model, calib, alpha, windows):
    return _script_reference(smoothquant_fp8_reference)(model, calib, alpha, windows)


def _int8_reference(model, calib, alpha, windows):
    return _script_reference(smoothquant_int8_torchao_reference)(model, calib, alpha, windows)


def _w8a8_handler():
    from ..nn.convert import HANDLERS
    from ..schemes import W8A8

    return tuple(h for k, h in HANDLERS.items() if issubclass(W8A8, k) or k is W8A8)


def _layer_map_functions():
    from ..models import layer_maps

    return tuple(v for v in vars(layer_maps).values() if callable(v) and getattr(v, "__module__", "") == layer_maps.__name__)


# labkit's whole scripts (they live here, outside the watched packages): a fill-in calling them scores 0
_LABKIT_SCRIPTS_ONLY = (via_labkit(smoothquant_int8_torchao_reference), via_labkit(smoothquant_fp8_reference))
SPECS = (
    CaseCheck(name="calibrate_absmax", task=_TASKS["calibrate_absmax"], reference=calibrate_reference,
              cases=_calib_cases, compare=_calib_compare, n_outputs=len(_NAMES), watch=("models", "quant"),
              allowed=(via_labkit(observe_linear_inputs),), language="torch (forward hooks)"),
    CaseCheck(name="smoothing_factors", task=_TASKS["smoothing_factors"], reference=_sq.smooth_factors,
              cases=_factor_cases, compare=_factor_compare, watch=("quant",), language="torch", mutation_fails=True),
    CaseCheck(name="fold_smoothing", task=_TASKS["fold_smoothing"], reference=fold_reference, cases=_fold_cases,
              compare=_fold_compare, n_outputs=3, watch=("quant", "models"), language="torch",
              deps={"smoothing_factors": _sq.smooth_factors}, mutation_fails=True),
    CaseCheck(name="smoothquant_int8_torchao", task=_TASKS["smoothquant_int8_torchao"], reference=_int8_reference,
              cases=_script_cases, compare=_script_compare, n_outputs=2, watch=("models",),
              allowed=_LABKIT_SCRIPTS_ONLY, language="torchao (SmoothQuantConfig)"),
    CaseCheck(name="smoothquant_fp8", task=_TASKS["smoothquant_fp8"], reference=_fp8_reference,
              cases=_script_cases, compare=_script_compare, n_outputs=2, watch=("models",),
              allowed=_w8a8_handler() + _layer_map_functions() + (calibrate_reference, fold_reference,
                                                                   _sq.smooth_factors) + _LABKIT_SCRIPTS_ONLY,
              language="torch and labkit.nn.quantize_model"),
    CaseCheck(name="alpha_search", task=_TASKS["alpha_search"], reference=alpha_search_reference,
              cases=_search_cases, compare=_search_compare, n_outputs=2, watch=("quant",),
              allowed=(_Curve.__call__,), language="Python"),
)
for _spec in SPECS:
    register(_spec)
NAMES = tuple(s.name for s in SPECS)
SCRIPTS = ("smoothquant_int8_torchao", "smoothquant_fp8")
_LABKIT_SCRIPTS = {"smoothquant_int8_torchao": smoothquant_int8_torchao_reference,
                   "smoothquant_fp8": smoothquant_fp8_reference}


def check_sq(name: str, fn, *, seed: int = 0, points: float | None = None) -> Score | None:
    """Grade the student's ``fn`` for exercise ``name`` (see the module docstring)."""
    if name not in NAMES:
        raise KeyError(f"unknown notebook-08 exercise {name!r}; known: {', '.join(NAMES)}")
    if name in SCRIPTS and callable(fn):
        fn = as_perplexity(name, fn)
    return grade(name, fn, seed=seed, points=points, plot=False)


_ANNOUNCED: set[str] = set()


def script_or_reference(name: str, fn) -> Callable:
    """For 8.4/8.5: the student's model-building ``fn`` when its check passed in full, else labkit's
    (said once) — ``use_or_reference`` for fill-ins that return a model."""
    if name not in SCRIPTS:
        raise KeyError(f"{name!r} is not a model-building fill-in; known: {', '.join(SCRIPTS)}")
    if callable(fn) and passed(name, as_perplexity(name, fn)):
        return fn
    if name not in _ANNOUNCED:
        _ANNOUNCED.add(name)
        print(f"↪ {_TASKS[name]} {name} is not checked with full marks: the cells below use labkit's version")
    return _LABKIT_SCRIPTS[name]


freeze_module(__name__)
