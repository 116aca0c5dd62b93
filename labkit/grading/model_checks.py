"""Checks for the fill-ins of notebooks 06 (weight-only INT8/FP8 in a model) and 09 (W4A16 vs W8A8).

Every check runs through the one case engine (``labkit.grading.cases``): seeded cases, the
tripwire on labkit's packages, answer records re-checked outside the kernel. Fill-ins that return
a module or a model are graded through an *adapter* defined here that calls the student's code and
returns tensors and numbers (what the re-check can read); the tripwire watches the student's calls
made from inside the adapter.

Notebook 06

* ``quantize_weight(w, fmt, granularity)`` → ``(codes, scale)``: absmax scales ``max|block| / qmax``
  (1.0 for an all-zero block) computed in float32, per tensor ``()``, per row ``(N,)``, per group
  ``(N, ceil(K/g))`` (the last group shorter); INT8 codes ``clamp(round(w/s), −127, 127)`` as int8,
  FP8 codes ``clamp(w/s, −448, 448)`` cast to ``float8_e4m3fn``. Graded twice, INT8 cases
  (``quantize_weight_int8``) and FP8 cases (``quantize_weight_fp8``). Reference: the pure-torch
  ``quantize_weight_reference`` here (tested equal to ``labkit.quant`` in the tests). Codes may
  differ by one step on ≤ 2 % of the elements (rounding ties).
* ``WeightOnlyLinear(linear, fmt, granularity, mode)`` → a module (``weight_only_linear``): its
  output on seeded inputs within 1e-4 (relative, Frobenius) of the float reference ``x Ŵᵀ + b``;
  in ``"real"`` mode its parameters and buffers (bias excluded) take at most 1 byte per weight plus
  4 per scale (and no float copy of the weight); ``linear`` unchanged. The student's
  ``quantize_weight`` is replaced by the reference while this is graded.
* ``swap_linears(model, make_layer, include_lm_head=False)`` → a new model whose decoder linears are
  ``make_layer(linear)`` (``swap_linears``): its logits equal those of labkit's
  ``quantize_model(model, …, quantizer=…)`` with the same factory, the input model is unchanged.
* The whole pipeline (``weight_only_pipeline``): the student's swap with the student's module on a
  tiny model — perplexity within 0.5 % of labkit's for the same scheme (a second, hidden scheme
  under other seeds), real mode stores ≈ ¼ of the float32 bytes, and a model whose logits equal the
  baseline's is refused.

Notebook 09

* ``quantize_int4_groups(w, group_size)`` → ``(codes int8 in −7..7, scale (N, ceil(K/g)) float32)``
  (reference ``labkit.nn.int4.quantize_int4``);
* ``int4_kernel_inputs(codes, scale)`` → ``(u = codes + 8 as int32, scale_and_zeros (G, N, 2))``
  (reference ``labkit.nn.int4.kernel_layout``);
* ``collect_hessians(model, windows, names)`` → one ``H = 2 Σ x xᵀ`` ``(K, K)`` float32 per name,
  summed over every token of every window, from forward (pre-)hooks (reference here);
* ``gptq_model(model, hessians, group_size, layer_gptq)`` → a copy whose named linears hold
  ``layer_gptq(W, H, g)`` (reference: the same loop with labkit's ``gptq_full``).

The injected helpers a fill-in may call (``make_layer``, ``layer_gptq``, the reference
``quantize_weight`` while the module is graded) are allowed. ``layer_gptq`` reaches
``labkit.quant.gptq_full``; that reference is allowed only when labkit's helper calls it
(``integrity.via_labkit``), so a ``gptq_model`` that calls it itself scores 0, as one that calls
labkit's loop ``gptq_model_reference`` (notebook 09 imports it as the later cells' fallback) does;
so does a ``collect_hessians`` that hands its update to labkit's hook loop
(``labkit.grading.hooks.observe_linear_inputs``), and a ``WeightOnlyLinear`` that dequantizes with
this module's ``dequantize_reference`` / ``expand_scale``.
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.int4 import kernel_layout as _kernel_layout
from ..nn.int4 import quantize_int4 as _quantize_int4
from ..quant.granularity import PerGroup, PerRow, PerTensor
from .cases import CaseCheck, Score, grade, passed, register
from .compare import GradingError, compare_floats
from .integrity import freeze_module, via_labkit
from .hooks import observe_linear_inputs

_TASKS = {"quantize_weight_int8": "Task 6.1", "quantize_weight_fp8": "Task 6.1", "weight_only_linear": "Task 6.2",
          "swap_linears": "Task 6.3", "weight_only_pipeline": "Tasks 6.1–6.3", "quantize_int4_groups": "Task 9.1",
          "int4_kernel_inputs": "Task 9.2", "collect_hessians": "Task 9.3", "gptq_model": "Task 9.4"}
QMAX = {"int8": 127.0, "fp8_e4m3": 448.0}
PPL_RTOL = 0.005
OUTPUT_RTOL = 1e-4


# -- references (pure torch: the student's contract, written out) ---------------------------------

def quantize_weight_reference(w: torch.Tensor, fmt: str, granularity) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes and float32 scales of ``w: (N, K)`` (see the module docstring)."""
    qmax = QMAX[fmt]
    x = w.detach().to(torch.float32)
    n, k = x.shape
    if isinstance(granularity, PerTensor):
        blocks = x.reshape(1, 1, -1)
    elif isinstance(granularity, PerRow):
        blocks = x.reshape(n, 1, k)
    else:
        g = granularity.group_size
        blocks = F.pad(x, (0, -k % g)).reshape(n, -1, g)
    amax = blocks.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    if fmt == "int8":
        codes = torch.clamp(torch.round(blocks / scale), -qmax, qmax).to(torch.int8)
    else:
        codes = torch.clamp(blocks / scale, -qmax, qmax).to(torch.float8_e4m3fn)
    codes = codes.reshape(n, -1)[:, :k] if isinstance(granularity, PerGroup) else codes.reshape(n, k)
    scale = scale.reshape(()) if isinstance(granularity, PerTensor) else \
        scale.reshape(n) if isinstance(granularity, PerRow) else scale.reshape(n, -1)
    return codes, scale


def expand_scale(scale: torch.Tensor, shape: tuple[int, int], group_size: int | None = None) -> torch.Tensor:
    """A scale of any of the three granularities broadcast to the weight's ``(N, K)`` (per group:
    ``group_size`` columns each, the last group shorter — ceil(K/G) is not g when it is)."""
    n, k = shape
    if scale.ndim == 0:
        return scale.expand(n, k)
    if scale.ndim == 1:
        return scale[:, None].expand(n, k)
    return scale.repeat_interleave(group_size, dim=1)[:, :k]


def dequantize_reference(codes: torch.Tensor, scale: torch.Tensor, group_size: int | None = None) -> torch.Tensor:
    return codes.to(torch.float32) * expand_scale(scale.to(torch.float32), tuple(codes.shape), group_size)


def _linear_reference(linear: nn.Linear, fmt: str, granularity, mode: str, x: torch.Tensor):
    codes, scale = quantize_weight_reference(linear.weight, fmt, granularity)
    w = dequantize_reference(codes, scale, getattr(granularity, "group_size", None))
    y = F.linear(x.to(torch.float32), w, None if linear.bias is None else linear.bias.detach().float())
    return y, float(codes.numel() + 4 * scale.numel()), 1.0


def hessians_reference(model: nn.Module, windows: torch.Tensor, names: list[str]) -> tuple[torch.Tensor, ...]:
    """``H = 2 Σ x xᵀ`` over every token at each named linear's input (forward pre-hooks, removed after)."""
    acc: dict[str, torch.Tensor] = {}

    def update(name, x):
        x = x.to(torch.float32)
        acc[name] = acc.get(name, 0) + 2.0 * (x.T @ x)

    observe_linear_inputs(model, windows, names, update)
    return tuple(acc[n] for n in names)


def labkit_layer_gptq(W: torch.Tensor, H: torch.Tensor, group_size: int) -> torch.Tensor:
    """labkit's full GPTQ at 4 bits per group of ``group_size``: ``Ŵ`` in W's dtype."""
    from ..quant.gptq_full import gptq_quantize_hessian

    return gptq_quantize_hessian(W.detach(), H, 4, PerGroup(group_size)).weight


class _LayerGPTQ:
    """The ``layer_gptq`` a check hands to ``gptq_model`` (labkit's, counting its calls)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, W, H, group_size):
        self.calls += 1
        return labkit_layer_gptq(W, H, group_size)


def gptq_model_reference(model: nn.Module, hessians: dict, group_size: int, layer_gptq: Callable) -> nn.Module:
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, H in hessians.items():
            lin = out.get_submodule(name)
            lin.weight.copy_(layer_gptq(lin.weight, H, group_size))
    return out


# -- helpers ---------------------------------------------------------------------------------------

def _tiny(arch: str, seed: int) -> nn.Module:
    from ..models.tiny import tiny_model

    return tiny_model(arch, seed=seed).eval()


def _windows(vocab: int, n: int, seq: int, seed: int) -> torch.Tensor:
    return torch.randint(0, vocab, (n, seq), generator=torch.Generator().manual_seed(seed))


def _stored_bytes(module: nn.Module) -> tuple[float, float]:
    """(bytes of parameters and buffers except ``bias``, size of the largest float tensor)."""
    total, largest_float = 0, 0
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        if name.rsplit(".", 1)[-1] == "bias":
            continue
        total += t.numel() * t.element_size()
        if t.is_floating_point() and t.element_size() > 1:
            largest_float = max(largest_float, t.numel())
    return float(total), float(largest_float)


def _check_tensor(label: str, got, dtype: torch.dtype | None, shape: tuple, hint: str) -> None:
    if not isinstance(got, torch.Tensor):
        raise GradingError(f"{label}: expected a torch tensor, got {type(got).__name__}\n  → {hint}")
    if dtype is not None and got.dtype != dtype:
        raise GradingError(f"{label}: expected dtype {dtype}, got {got.dtype}\n  → {hint}")
    if tuple(got.shape) != tuple(shape):
        raise GradingError(f"{label}: expected shape {tuple(shape)}, got {tuple(got.shape)}\n  → {hint}")


def _compare_codes(label: str, got: torch.Tensor, ref: torch.Tensor, scale: torch.Tensor, tie_frac: float = 0.02):
    """Codes equal, or one grid step apart on ≤ ``tie_frac`` of the elements (rounding ties)."""
    g, r = got.detach().to(torch.float32), ref.to(torch.float32)
    if torch.equal(g, r):
        return
    bad = g != r
    if ref.dtype == torch.int8 or ref.dtype == torch.int32:
        one = (g - r).abs() <= 1
    else:  # fp8: one step of e4m3 is ≤ |v|/8 (3 mantissa bits), 2^-9 in the subnormals
        one = (g - r).abs() <= torch.maximum(r.abs() / 8, torch.full_like(r, 2.0**-9)) * 1.0001
    if bool((bad & ~one).any()) or int(bad.sum()) > max(1, int(tie_frac * r.numel())):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        ratio = (g[bad] / r[bad]).median().item() if bool((r[bad] != 0).all()) else float("nan")
        hint = ("a constant ratio between yours and the reference means the scale (max|block| / qmax, in float32)"
                if math.isfinite(ratio) and abs(ratio - 1) > 0.005 else
                "round half to even (torch.round), clamp to ±qmax before the cast, divide by the scale")
        raise GradingError(f"{label}: {int(bad.sum())} of {r.numel()} codes differ; first at {idx}: expected "
                           f"{r[idx].item():g}, got {g[idx].item():g}\n  → {hint}")


# -- 6.1 quantize_weight -------------------------------------------------------------------------

def _qw_cases(fmt: str):
    def cases(seed: int):
        gen = torch.Generator().manual_seed(seed)
        worked = torch.tensor([[1.27, -0.5, 0.004, 0.3, 0.02, -0.013], [0.0, 0.0, 0.0, 0.0, 3.0, -1.0]])
        w = torch.randn(8, 256, generator=gen) * 0.05
        w[torch.arange(8), torch.randint(0, 256, (8,), generator=gen)] *= 40.0       # an outlier per row
        ragged = torch.randn(16, 200, generator=gen) * 0.02
        ragged[3, 64:128] = 0.0                                                       # an all-zero group
        ragged[5] = 0.0                                                               # an all-zero row
        bf = (torch.randn(8, 128, generator=gen) * 0.1).bfloat16()
        return [("worked example (2, 6), groups of 4", (worked, fmt, PerGroup(4))),
                ("worked example per tensor", (worked, fmt, PerTensor())),
                ("(8, 256) with an outlier per row, per row", (w, fmt, PerRow())),
                ("(8, 256), per tensor", (w, fmt, PerTensor())),
                ("(16, 200), groups of 64: last group of 8, zero group and zero row", (ragged, fmt, PerGroup(64))),
                ("(16, 200), per row with a zero row", (ragged, fmt, PerRow())),
                ("(4, 48), group 128 > K: one group per row", (torch.randn(4, 48, generator=gen), fmt, PerGroup(128))),
                ("(8, 128) bfloat16, groups of 32", (bf, fmt, PerGroup(32)))]
    return cases


def _qw_compare(got, ref, args) -> None:
    w, fmt, gran = args
    codes, scale = got
    rcodes, rscale = ref
    cdtype = torch.int8 if fmt == "int8" else torch.float8_e4m3fn
    _check_tensor("scale", scale, torch.float32, tuple(rscale.shape),
                  "per tensor: a 0-d tensor; per row: (N,); per group: (N, ceil(K/g)) — float32")
    try:
        compare_floats("scale", scale.detach().numpy(), rscale.numpy(), rtol=1e-6, atol=0.0)
    except GradingError as exc:
        raise GradingError(f"{exc}\n  → s = max|block| / {QMAX[fmt]:g} computed in float32; 1.0 for a block of "
                           "zeros; a per-group block is g consecutive weights of one row (pad K, cut off after)") from None
    _check_tensor("codes", codes, cdtype, tuple(w.shape),
                  "int8 codes as torch.int8; fp8 codes as torch.float8_e4m3fn, shaped like w")
    _compare_codes("codes", codes, rcodes, rscale)


# -- 6.2 WeightOnlyLinear ------------------------------------------------------------------------

_LINEAR_ADAPTERS: dict[int, Callable] = {}


def linear_adapter(cls) -> Callable:
    """``cls(linear, fmt, granularity, mode)`` as ``(linear, fmt, granularity, mode, x) ->
    (y float32, stored bytes, 1.0 if linear is unchanged)`` — the same object for the same ``cls``."""
    if id(cls) not in _LINEAR_ADAPTERS:
        def weight_only_linear(linear, fmt, granularity, mode, x):
            before = linear.weight.detach().clone()
            with _injected(cls, {"quantize_weight": quantize_weight_reference}):
                module = cls(linear, fmt, granularity, mode)
            if not isinstance(module, nn.Module):
                raise GradingError(f"WeightOnlyLinear(...) must build an nn.Module, got {type(module).__name__}")
            with torch.no_grad():
                y = module(x)
            if not isinstance(y, torch.Tensor):
                raise GradingError(f"forward must return a tensor, got {type(y).__name__}")
            stored, largest_float = _stored_bytes(module)
            if mode == "real" and largest_float >= linear.weight.numel():
                raise GradingError("real mode keeps a float tensor as large as the weight: store only the 8-bit codes "
                                   "and the scales, and dequantize inside forward (a temporary, not a buffer)")
            return y.detach().to(torch.float32), stored, float(torch.equal(before, linear.weight.detach()))
        weight_only_linear.student_cls = cls
        _LINEAR_ADAPTERS[id(cls)] = weight_only_linear
    return _LINEAR_ADAPTERS[id(cls)]


def _linear_cases(seed: int):
    gen = torch.Generator().manual_seed(seed)
    cases = []
    specs = [("int8", PerRow(), "fake", 96, 64, True), ("int8", PerRow(), "real", 96, 64, True),
             ("fp8_e4m3", PerTensor(), "real", 48, 80, False), ("int8", PerGroup(32), "real", 64, 100, True),
             ("int8", PerGroup(32), "fake", 80, 48, True),     # K = 80: groups of 32, 32 and 16
             ("fp8_e4m3", PerGroup(64), "real", 160, 32, False)]  # K = 160: the last group of 32
    for fmt, gran, mode, k, n, bias in specs:
        lin = nn.Linear(k, n, bias=bias)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(n, k, generator=gen) * 0.05)
            if bias:
                lin.bias.copy_(torch.randn(n, generator=gen) * 0.1)
        x = torch.randn(3, 5, k, generator=gen)
        cases.append((f"{fmt} {gran!r} {mode}, ({n}, {k}){' with bias' if bias else ''}, x (3, 5, {k})",
                      (lin, fmt, gran, mode, x)))
    return cases


def _linear_compare(got, ref, args) -> None:
    lin, fmt, gran, mode, x = args
    y, stored, unchanged = got
    ry, rbytes, _ = ref
    _check_tensor("output", y, None, tuple(ry.shape), "forward maps (..., in_features) to (..., out_features)")
    if float(unchanged) != 1.0:
        raise GradingError("building the layer changed linear.weight: quantize a copy, leave the float layer alone")
    rel = float((y.double() - ry.double()).norm() / ry.double().norm())
    if not rel <= OUTPUT_RTOL:
        raise GradingError(f"output differs from x·Ŵᵀ + b by {rel:.2g} (relative; allowed {OUTPUT_RTOL:g})\n  → Ŵ = codes × "
                           "scale (each scale over its own block), in float32; add the bias; return x's dtype")
    if mode == "real" and float(stored) > rbytes + 64:
        raise GradingError(f"real mode stores {float(stored):.0f} bytes for the weight, 8-bit codes + float32 scales "
                           f"take {rbytes:.0f}: keep the codes in an 8-bit dtype (register_buffer), not a float copy")


@contextlib.contextmanager
def _injected(cls, deps: dict):
    """Swap ``deps`` into the namespace the student's class was written in (the notebook's), so a
    slip in an earlier fill-in does not count twice; restored afterwards."""
    glb = getattr(getattr(cls, "__init__", None), "__globals__", None)
    if not isinstance(glb, dict) or glb.get("__name__", "").startswith("labkit"):
        yield
        return
    with lent(glb, deps):
        yield


@contextlib.contextmanager
def lent(glb: dict, deps: dict):
    """``glb.update(deps)`` for the duration of the block, then every name back as it was (restored
    or removed). Used to grade a later fill-in with labkit's version of the earlier ones."""
    saved = {k: glb[k] for k in deps if k in glb}
    glb.update(deps)
    try:
        yield
    finally:
        for k in deps:
            if k in saved:
                glb[k] = saved[k]
            else:
                glb.pop(k, None)


# -- 6.3 swap_linears ----------------------------------------------------------------------------

class _Marked(nn.Module):
    """The layer a swap check's factory builds: per-row int8 fake quantization in plain torch."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().to(torch.float32)
        s = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
        self.weight = nn.Parameter(torch.round(w / s) * s, requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def forward(self, x):
        return F.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))


class _Factory:
    """``make_layer(linear) -> module`` for the swap checks; ``build(linear)`` may be any class."""

    def __init__(self, build=_Marked):
        self.build, self.calls = build, 0

    def __call__(self, linear):
        self.calls += 1
        return self.build(linear)


_SWAP_ADAPTERS: dict[int, Callable] = {}
_PROBE = torch.arange(24).reshape(2, 12) % 320


def swap_adapter(fn) -> Callable:
    """``swap_linears(model, make_layer, include_lm_head)`` as ``(model, include_lm_head) -> (logits,
    input model unchanged 1/0)`` with the check's own factory."""
    if id(fn) not in _SWAP_ADAPTERS:
        def swap_linears(model, include_lm_head):
            before = {k: v.clone() for k, v in model.state_dict().items()}
            out = fn(model, _Factory(), include_lm_head)
            if not isinstance(out, nn.Module):
                raise GradingError(f"swap_linears must return the new model, got {type(out).__name__}")
            if out is model:
                raise GradingError("swap_linears returned the model it was given: swap the layers of a copy "
                                   "(copy.deepcopy(model)) so the baseline stays a baseline")
            unchanged = all(torch.equal(v, model.state_dict()[k]) for k, v in before.items()) and \
                not any(isinstance(m, _Marked) for m in model.modules())
            with torch.no_grad():
                logits = out(input_ids=_PROBE).logits.detach().float()
            return logits, float(unchanged)
        swap_linears.student_fn = fn
        _SWAP_ADAPTERS[id(fn)] = swap_linears
    return _SWAP_ADAPTERS[id(fn)]


def _swap_reference(model, include_lm_head):
    from ..nn import quantize_model

    factory = _Factory()
    q = quantize_model(model, "int8-row", "fake", quantizer=lambda lin, scheme, mode: factory(lin),
                       include_lm_head=include_lm_head).model
    with torch.no_grad():
        return q(input_ids=_PROBE).logits.float(), 1.0


def _swap_cases(seed: int):
    return [("tiny qwen3, lm_head left alone", (_tiny("qwen3", seed), False)),
            ("tiny llama, lm_head left alone", (_tiny("llama", seed + 1), False)),
            ("tiny qwen2, include_lm_head=True", (_tiny("qwen2", seed + 2), True))]


def _swap_compare(got, ref, args) -> None:
    logits, unchanged = got
    rlogits, _ = ref
    model = args[0]
    _check_tensor("logits", logits, None, tuple(rlogits.shape), "return the model with the layers swapped")
    if float(unchanged) != 1.0:
        raise GradingError("the input model changed: deep-copy it first, then swap the copy's layers")
    with torch.no_grad():
        base = model(input_ids=_PROBE).logits.float()
    if torch.equal(logits, base):
        raise GradingError("refused: the returned model computes exactly the input model's logits — no layer was "
                           "swapped (setattr on the parent module, by the child's name)")
    diff = float((logits - rlogits).abs().max())
    if not diff <= 1e-5 * float(rlogits.abs().max()) + 1e-6:
        which = "lm_head too" if args[1] else "every nn.Linear except lm_head (the output layer)"
        raise GradingError(f"logits differ from labkit's swap by up to {diff:.3g}\n  → replace {which}, each by "
                           "make_layer(that linear); embeddings and norms stay")


# -- the pipeline: 6.1–6.3 together on a tiny model ------------------------------------------------

_PIPELINE_ADAPTERS: dict[tuple[int, int], Callable] = {}


class _StudentFactory:
    def __init__(self, cls, fmt, gran, mode):
        self.cls, self.fmt, self.gran, self.mode = cls, fmt, gran, mode

    def __call__(self, linear):
        return self.cls(linear, self.fmt, self.gran, self.mode)


def _ppl(model, windows) -> float:
    from ..eval.perplexity import perplexity_of_windows

    return float(perplexity_of_windows(model, windows).ppl)


def _float_bytes(model) -> float:
    return float(sum(m.weight.numel() * 4 for n, m in model.named_modules() if isinstance(m, nn.Linear)
                     and n != "lm_head"))


def pipeline_adapter(swap_fn, cls) -> Callable:
    """The student's swap with the student's module as ``(model, fmt, granularity, mode, windows) ->
    (ppl, stored bytes of the swapped layers / their float32 bytes, 1.0 if the logits moved)``."""
    key = (id(swap_fn), id(cls))
    if key not in _PIPELINE_ADAPTERS:
        def weight_only_pipeline(model, fmt, granularity, mode, windows):
            names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "lm_head"]
            out = swap_fn(model, _StudentFactory(cls, fmt, granularity, mode), False)
            if not isinstance(out, nn.Module):
                raise GradingError(f"swap_linears must return a model, got {type(out).__name__}")
            stored = sum(_stored_bytes(out.get_submodule(n))[0] for n in names)
            with torch.no_grad():
                moved = not torch.equal(out(input_ids=windows[:1]).logits, model(input_ids=windows[:1]).logits)
            return _ppl(out, windows), stored / _float_bytes(model), float(moved)
        weight_only_pipeline.student_fn = swap_fn
        _PIPELINE_ADAPTERS[key] = weight_only_pipeline
    return _PIPELINE_ADAPTERS[key]


def _pipeline_reference(model, fmt, granularity, mode, windows):
    from ..nn import quantize_model
    from ..schemes import WeightOnly

    scheme = WeightOnly(fmt, granularity)
    stored = quantize_model(model, scheme, "real").report.bytes_after   # codes + scales of the decoder linears
    return _ppl(quantize_model(model, scheme, "fake").model, windows), stored / _float_bytes(model), 1.0


def _pipeline_cases(seed: int):
    m = _tiny("qwen3", seed)
    win = _windows(320, 3, 48, seed + 7)
    cases = [("tiny qwen3, int8 per group of 32, real", (m, "int8", PerGroup(32), "real", win)),
             ("tiny qwen3, fp8 per row, fake", (m, "fp8_e4m3", PerRow(), "fake", win))]
    if seed != 0:  # the hidden test adds a second scheme the visible check never ran
        cases.append(("tiny llama, fp8 per group of 64, real", (_tiny("llama", seed), "fp8_e4m3", PerGroup(64), "real",
                                                                  win)))
    return cases


def _pipeline_compare(got, ref, args) -> None:
    ppl, ratio, moved = (float(v) for v in got)
    rppl, rratio, _ = ref
    mode = args[3]
    if moved != 1.0:
        raise GradingError("refused: the swapped model's logits equal the float model's — nothing was quantized")
    if not abs(ppl - rppl) <= PPL_RTOL * rppl:
        raise GradingError(f"perplexity {ppl:.4f}, labkit's {rppl:.4f} for the same scheme (must be within "
                           f"{PPL_RTOL:.1%})\n  → check Tasks 6.1–6.3 one by one: their checks say which part is off")
    if mode == "real" and not ratio <= rratio * 1.02 + 0.01:
        raise GradingError(f"real mode stores {ratio:.2f}× the float32 bytes; 8-bit codes + scales take "
                           f"{float(rratio):.2f}×\n  → keep codes (int8 / float8) and scales, no float weight")


# -- 9.1 / 9.2 int4 --------------------------------------------------------------------------------

def _int4_cases(seed: int):
    gen = torch.Generator().manual_seed(seed)
    worked = torch.tensor([[0.7, -0.35, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0]])
    w = torch.randn(32, 256, generator=gen) * 0.05
    w[0, 5] = 2.0
    ragged = torch.randn(16, 200, generator=gen)
    ragged[2, :64] = 0.0
    return [("worked example (1, 8), groups of 4", (worked, 4)), ("(32, 256) with an outlier, groups of 64", (w, 64)),
            ("(16, 200), groups of 64: last group of 8, a zero group", (ragged, 64)),
            ("(16, 96), groups of 32", (torch.randn(16, 96, generator=gen) * 3, 32))]


def _int4_compare(got, ref, args) -> None:
    codes, scale = got
    rcodes, rscale = ref
    _check_tensor("scale", scale, torch.float32, tuple(rscale.shape), "one float32 scale per group: (N, ceil(K/g))")
    try:
        compare_floats("scale", scale.detach().numpy(), rscale.numpy(), rtol=1e-6, atol=0.0)
    except GradingError as exc:
        raise GradingError(f"{exc}\n  → s = max|group| / 7 (int4 uses −7..7), 1.0 for a group of zeros") from None
    _check_tensor("codes", codes, torch.int8, tuple(args[0].shape), "int4 codes stored one per int8, shaped like w")
    if int(codes.abs().max()) > 7:
        raise GradingError("codes outside −7..7: clamp to the 4-bit symmetric range")
    _compare_codes("codes", codes, rcodes, rscale)


def _layout_cases(seed: int):
    gen = torch.Generator().manual_seed(seed)
    worked = (torch.tensor([[-7, 0, 7, 1]], dtype=torch.int8).repeat(2, 1), torch.tensor([[0.5], [0.25]]))
    cases = [("worked example: 2 rows, one group", worked)]
    for n, k, g in ((32, 128, 64), (48, 96, 32)):
        codes = torch.randint(-7, 8, (n, k), generator=gen, dtype=torch.int8)
        cases.append((f"({n}, {k}) codes, groups of {g}", (codes, torch.rand(n, k // g, generator=gen) + 0.01)))
    return cases


def _layout_compare(got, ref, args) -> None:
    u, sz = got
    ru, rsz = ref
    _check_tensor("u", u, torch.int32, tuple(ru.shape), "the kernel takes unsigned nibbles 0..15 as int32, (N, K)")
    if not torch.equal(u, ru):
        d = (u.long() - ru.long())
        raise GradingError(f"u differs from codes + 8 (e.g. by {int(d[d != 0][0])})\n  → the kernel subtracts 8 from "
                           "each nibble: store code + 8, as int32")
    _check_tensor("scale_and_zeros", sz, torch.float32, tuple(rsz.shape),
                  "(groups, N, 2): groups first, then output rows, then [scale, zero]")
    compare_floats("scale_and_zeros", sz.detach().numpy(), rsz.numpy(), rtol=0.0, atol=0.0)


# -- 9.3 / 9.4 GPTQ on a model ---------------------------------------------------------------------

_HNAMES = ("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.down_proj",
           "model.layers.1.mlp.up_proj")


def _hessian_cases(seed: int):
    cases = []
    for arch, n, seq in (("qwen3", 2, 16), ("llama", 3, 8)):
        m = _tiny(arch, seed)
        cases.append((f"tiny {arch}, {n} windows of {seq} tokens", (m, _windows(320, n, seq, seed), list(_HNAMES))))
    return cases


def _hessian_compare(got, ref, args) -> None:
    for name, g, r in zip(args[2], got, ref):
        _check_tensor(name, g, torch.float32, tuple(r.shape), "one (in, in) float32 matrix per name, in order")
        err = float((g.double() - r.double()).abs().max() / r.double().abs().max())
        if not err <= 1e-5:
            ratio = float(g.double().trace() / r.double().trace())
            hint = (f"yours is {ratio:.3g}× the reference: H = 2·Σ xᵀx, a sum over every token of every window "
                    "(not a mean, not the last window only)" if abs(ratio - 1) > 1e-3 else
                    "hook the linear's *input* (a forward pre-hook sees args[0]); flatten (batch, seq, in) to (tokens, in)")
            raise GradingError(f"{name}: differs from the reference by {err:.2g} (relative)\n  → {hint}")


_GPTQ_ADAPTERS: dict[int, Callable] = {}
_GPTQ_NAMES = ("model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj", "model.layers.1.self_attn.v_proj")


def _weights_vector(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).float() for _, p in sorted(model.named_parameters())])


def gptq_adapter(fn) -> Callable:
    """``gptq_model(model, hessians, group_size, layer_gptq)`` as ``(model, windows, group_size) ->
    (every parameter of the result, flattened; 1.0 if the input model is unchanged; layer_gptq calls)``."""
    if id(fn) not in _GPTQ_ADAPTERS:
        def gptq_model(model, windows, group_size):
            hessians = dict(zip(_GPTQ_NAMES, hessians_reference(model, windows, list(_GPTQ_NAMES))))
            before = _weights_vector(model)
            helper = _LayerGPTQ()
            out = fn(model, hessians, group_size, helper)
            if not isinstance(out, nn.Module):
                raise GradingError(f"gptq_model must return the quantized model, got {type(out).__name__}")
            if out is model:
                raise GradingError("gptq_model returned the model it was given: work on copy.deepcopy(model)")
            return _weights_vector(out), float(torch.equal(before, _weights_vector(model))), float(helper.calls)
        gptq_model.student_fn = fn
        _GPTQ_ADAPTERS[id(fn)] = gptq_model
    return _GPTQ_ADAPTERS[id(fn)]


def _gptq_reference(model, windows, group_size):
    hessians = dict(zip(_GPTQ_NAMES, hessians_reference(model, windows, list(_GPTQ_NAMES))))
    out = gptq_model_reference(model, hessians, group_size, labkit_layer_gptq)
    return _weights_vector(out), 1.0, float(len(_GPTQ_NAMES))


def _gptq_cases(seed: int):
    return [("tiny qwen3, 3 layers, groups of 32", (_tiny("qwen3", seed), _windows(320, 4, 32, seed + 3), 32)),
            ("tiny qwen2, 3 layers, groups of 64", (_tiny("qwen2", seed + 1), _windows(320, 4, 32, seed + 4), 64))]


def _gptq_compare(got, ref, args) -> None:
    vec, unchanged, calls = got
    rvec, _, rcalls = ref
    if float(unchanged) != 1.0:
        raise GradingError("the input model changed: quantize a deep copy")
    if float(calls) != float(rcalls):
        raise GradingError(f"layer_gptq was called {float(calls):.0f} times for {float(rcalls):.0f} layers: once per "
                           "entry of hessians")
    _check_tensor("parameters", vec, None, tuple(rvec.shape), "return the whole model")
    diff = (vec.double() - rvec.double()).abs()
    if not float(diff.max()) <= 1e-6:
        raise GradingError(f"{int((diff > 1e-6).sum())} parameters differ from labkit's result\n  → for each name in "
                           "hessians: W = that linear's weight in the copy, Ŵ = layer_gptq(W, H, group_size), copy Ŵ "
                           "into the weight (under torch.no_grad()); leave every other parameter alone")


def _gptq_allowed() -> tuple:
    """What ``layer_gptq`` reaches inside labkit/quant when called from the student's loop (a
    context manager's generator is resumed by contextlib, so it counts as called from outside).
    The GPTQ itself only through labkit's helper: the student calling it directly is a hit."""
    from ..quant import gptq_full

    return (_LayerGPTQ.__call__, labkit_layer_gptq, via_labkit(gptq_full.gptq_quantize_hessian),
            gptq_full._single_thread.__wrapped__, PerGroup.__post_init__, via_labkit(gptq_model_reference))


# -- registration ------------------------------------------------------------------------------------

_WATCH = ("quant", "nn", "models")
# the dequantization is Task 6.2's: labkit's helpers here may run it for labkit's code, not for the student's
_DEQUANTIZE_ONLY_VIA_LABKIT = (via_labkit(dequantize_reference), via_labkit(expand_scale))
SPECS = (
    CaseCheck(name="quantize_weight_int8", task=_TASKS["quantize_weight_int8"], reference=quantize_weight_reference,
              cases=_qw_cases("int8"), compare=_qw_compare, n_outputs=2, watch=_WATCH, language="torch",
              mutation_fails=True),
    CaseCheck(name="quantize_weight_fp8", task=_TASKS["quantize_weight_fp8"], reference=quantize_weight_reference,
              cases=_qw_cases("fp8_e4m3"), compare=_qw_compare, n_outputs=2, watch=_WATCH, language="torch",
              mutation_fails=True),
    CaseCheck(name="weight_only_linear", task=_TASKS["weight_only_linear"], reference=_linear_reference,
              cases=_linear_cases, compare=_linear_compare, n_outputs=3, watch=_WATCH, language="torch",
              allowed=(quantize_weight_reference,) + _DEQUANTIZE_ONLY_VIA_LABKIT),
    CaseCheck(name="swap_linears", task=_TASKS["swap_linears"], reference=_swap_reference, cases=_swap_cases,
              compare=_swap_compare, n_outputs=2, watch=_WATCH, language="torch (named_modules, setattr)",
              allowed=(_Factory.__call__, _Marked.__init__, _Marked.forward)),
    CaseCheck(name="weight_only_pipeline", task=_TASKS["weight_only_pipeline"], reference=_pipeline_reference,
              cases=_pipeline_cases, compare=_pipeline_compare, n_outputs=3, watch=_WATCH,
              language="your Tasks 6.1–6.3",
              allowed=(_StudentFactory.__call__, via_labkit(quantize_weight_reference)) + _DEQUANTIZE_ONLY_VIA_LABKIT),
    CaseCheck(name="quantize_int4_groups", task=_TASKS["quantize_int4_groups"], reference=_quantize_int4,
              cases=_int4_cases, compare=_int4_compare, n_outputs=2, watch=_WATCH, language="torch",
              mutation_fails=True),
    CaseCheck(name="int4_kernel_inputs", task=_TASKS["int4_kernel_inputs"], reference=_kernel_layout,
              cases=_layout_cases, compare=_layout_compare, n_outputs=2, watch=_WATCH, language="torch",
              mutation_fails=True),
    CaseCheck(name="collect_hessians", task=_TASKS["collect_hessians"], reference=hessians_reference,
              cases=_hessian_cases, compare=_hessian_compare, n_outputs=len(_HNAMES), watch=_WATCH,
              allowed=(via_labkit(observe_linear_inputs),), language="torch (forward pre-hooks)"),
    CaseCheck(name="gptq_model", task=_TASKS["gptq_model"], reference=_gptq_reference, cases=_gptq_cases,
              compare=_gptq_compare, n_outputs=3, watch=_WATCH, language="torch",
              allowed=_gptq_allowed()),
)
for _spec in SPECS:
    register(_spec)
NAMES = tuple(s.name for s in SPECS)


def _adapt(name: str, fn, extra):
    if not callable(fn):
        return fn
    if name == "weight_only_linear":
        return linear_adapter(fn)
    if name == "swap_linears":
        return swap_adapter(fn)
    if name == "weight_only_pipeline":
        return pipeline_adapter(fn, extra)
    if name == "gptq_model":
        return gptq_adapter(fn)
    return fn


def check_model(name: str, fn, *, seed: int = 0, points: float | None = None, module=None) -> Score | None:
    """Grade the student's ``fn`` for exercise ``name`` (see the module docstring). For
    ``weight_only_pipeline`` pass the swap as ``fn`` and the ``WeightOnlyLinear`` class as ``module``."""
    if name not in NAMES:
        raise KeyError(f"unknown notebook-06/09 exercise {name!r}; known: {', '.join(NAMES)}")
    if name == "weight_only_pipeline" and not callable(module):
        print(f"✗ {_TASKS[name]} {name}: WeightOnlyLinear is not defined yet (run Task 6.2's cell) — 0 points")
        return None if points is None else Score(0.0)
    return grade(name, _adapt(name, fn, module), seed=seed, points=points, plot=False)


def passed_check(name: str, fn, module=None) -> bool:
    """True when the latest check of ``name`` in this kernel gave ``fn`` full marks."""
    return bool(callable(fn) and passed(name, _adapt(name, fn, module)))


_ANNOUNCED: set[str] = set()


def announce_fallback(name: str, what: str) -> None:
    """Say once that the cells below use labkit's version of fill-in ``name``."""
    if name not in _ANNOUNCED:
        _ANNOUNCED.add(name)
        print(f"↪ {_TASKS[name]} {name} is not checked with full marks yet: the cells below use {what}")


def layer_gptq_or_labkit(fn, seed: int = 0) -> Callable:
    """``fn(W, H, group_size) -> Ŵ`` (e.g. your GPTQ from notebook 04) when it agrees with labkit's
    GPTQ on a seeded layer (≤ 1 % of the weights one step apart), else labkit's — said once."""
    if callable(fn):
        gen = torch.Generator().manual_seed(seed)
        W = torch.randn(32, 128, generator=gen) * 0.05
        X = torch.randn(256, 128, generator=gen) + 0.5 * torch.randn(256, 1, generator=gen)
        H = 2 * X.T @ X
        ref = labkit_layer_gptq(W, H, 64)
        try:
            got = fn(W.clone(), H.clone(), 64)
            step = expand_scale(_quantize_int4(ref, 64)[1], tuple(W.shape), 64)
            ok = isinstance(got, torch.Tensor) and got.shape == W.shape and \
                float(((got - ref).abs() > 0.5 * step).float().mean()) <= 0.01
        except Exception as exc:  # the student's function: say what happened, then use labkit's
            print(f"your layer_gptq raised {type(exc).__name__}: {exc}")
            ok = False
        if ok:
            print("✓ your layer_gptq agrees with labkit's GPTQ on a seeded layer: the cells below use yours")
            return fn
        print("↪ your layer_gptq does not agree with labkit's GPTQ on a seeded (32, 128) layer: the cells below "
              "use labkit's (labkit.quant.gptq_full)")
    return labkit_layer_gptq


freeze_module(__name__)
