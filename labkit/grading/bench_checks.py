"""Checks for the fill-ins of notebook 07 (throughput and matmul precision).

Five exercises, graded by the one case engine (``labkit.grading.cases``: tripwire, in-place
detection, answer records for the out-of-kernel re-check):

* ``time_phase(model, ids, phase, gen_len, clock)`` — tokens/s of one prefill (``batch·prompt_len``
  tokens, one forward pass) or one KV-cached greedy decode (``batch·gen_len`` tokens; the prefill
  that fills the cache is not timed). Graded on ``labkit.bench.stub.StubLM``, whose cost per call
  and per token is known and which runs on a virtual ``clock``, so the right answer is exact
  (reference: ``labkit.bench.stub.time_phase``, the loop of ``labkit.bench.generation``). A loop
  without the KV cache pays for every earlier token again; a decode clock started before the
  prefill counts it; ``time.perf_counter`` instead of ``clock`` measures nothing — each has a hint.
* ``benchmark(baseline, quantized, ids, phase, gen_len, repeats, warmup, clock)`` → ``(tokens_per_s,
  baseline_tokens_per_s, speedup)``: warm-up runs of both models, then ``repeats`` interleaved pairs,
  medians (reference ``labkit.bench.stub.benchmark``: labkit's one paired loop,
  ``labkit.bench.timing.paired_seconds``, on the stub's clock). The student's ``time_phase`` is
  replaced by labkit's while this runs (a slip there costs only its own points). Cases: a stub
  with a one-time compile cost and 2 repeats (a missing warm-up shows in the median of two), the
  same cost with no warm-up asked and 3 repeats (the slow first pair moves a mean, not the
  median) and a machine that slows down over time (back-to-back blocks of one model then the
  other give a speedup off by ~20 %; interleaved pairs stay within 8 %).
* ``int8_matmul(a, b)`` → ``(acc, c)``: per-token int8 codes of ``a``, per-column codes of ``b``,
  ``acc`` the int32 sum of code products (exact), ``c = acc · sa · sb`` float32 (reference
  ``labkit.quant.accumulation``). ``acc`` must be exact and int32 — the large-K case shows why.
* ``limited_accumulate(qa, qb, acc_bits, promote_every)`` — the FP8 accumulator emulation (reference
  ``labkit.quant.accumulation.limited_accumulate``). A rounding detail (adding in float32 before the
  rounding) may change a few sums by one step of the accumulator: an answer passes when its distance
  to the reference is under 2 % of the reference's own accumulation error (and 1e-6 relative where
  there is none).
* ``matmul_rel_error(a, b, fmt, granularity)`` — ``‖AB − A·fq(B)‖_F / ‖AB‖_F`` with B fake-quantized
  as the weight ``Bᵀ`` (reference ``labkit.bench.matmul_error``); ``labkit.quant.fake_quantize`` is allowed.

``check_bench(name, fn, seed=0, points=None)`` grades ``fn``; a graded test returns a ``Score``.
"""

from __future__ import annotations

import math
import time

import torch

from ..bench import matmul_error as _me
from ..bench import stub as _stub
from ..quant import accumulation as _acc
from ..quant.primitives import fake_quantize as _fake_quantize
from .cases import CaseCheck, Score, grade, register
from .compare import GradingError
from .integrity import freeze_module

_TASKS = {"time_phase": "Task 7.1", "benchmark": "Task 7.2", "int8_matmul": "Task 7.3",
          "limited_accumulate": "Task 7.4", "matmul_rel_error": "Task 7.5"}


def _as_number(label: str, got) -> float:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise GradingError(f"{label}: expected one number (a Python float), got {type(got).__name__}"
                           "\n  → return a float, e.g. float(...) of your result")
    return float(got)


# -- Task 7.1 time_phase -----------------------------------------------------------------------------

def _stub_args(phase: str, batch: int, prompt_len: int, gen_len: int, **costs) -> dict:
    machine = _stub.StubMachine()
    model = _stub.StubLM("model", machine, **costs)
    return {"model": model, "ids": torch.zeros(batch, prompt_len, dtype=torch.long), "phase": phase,
            "gen_len": gen_len, "clock": machine.clock}


def _time_cases(seed: int):
    gen = torch.Generator().manual_seed(seed)
    call_s, token_s = (float(v) for v in torch.rand(2, generator=gen) * torch.tensor([0.004, 0.001]) + 1e-4)
    return [("worked example: prefill 1 × 64 tokens", _stub_args("prefill", 1, 64, 16)),
            ("worked example: decode 16 tokens, batch 1", _stub_args("decode", 1, 64, 16)),
            ("decode, batch 4, prompt of 100", _stub_args("decode", 4, 100, 8, call_s=call_s, token_s=token_s)),
            ("prefill, batch 3 (gen_len must not matter)", _stub_args("prefill", 3, 48, 5, call_s=call_s,
                                                                      token_s=token_s)),
            ("decode, batch 2, 1-token prompt", _stub_args("decode", 2, 1, 12, call_s=call_s, token_s=token_s))]


def _time_compare(got, ref, args) -> None:
    value = _as_number("time_phase", got)
    if math.isfinite(value) and abs(value - ref) <= 1e-6 * ref:
        return
    m, phase, g = args["model"], args["phase"], args["gen_len"]
    b, p = args["ids"].shape
    hint = ("prefill: one forward pass over all batch·prompt_len tokens, timed alone; decode: prefill first "
            "(untimed), then gen_len one-token steps that pass past_key_values back in")
    if phase == "decode":
        with_prefill = b * g / (m.run_seconds("prefill", b, p, g) + m.run_seconds("decode", b, p, g))
        no_cache = b * g / sum(m.call_s + m.token_s * b * (p + i + 1) for i in range(g))
        if abs(value - with_prefill) <= 1e-6 * with_prefill:
            hint = "your decode clock includes the prefill: start it after the prompt is in the cache"
        elif abs(value - no_cache) <= 0.05 * no_cache or value < 0.95 * ref:
            hint = ("each decode step seems to pay for the whole sequence again: feed only the new token and "
                    "pass the past_key_values of the previous call")
    if not math.isfinite(value) or value > 20 * ref:
        hint = "read the time with the clock argument (clock()), not time.perf_counter: the stub's time is virtual"
    raise GradingError(f"expected {ref:.6g} tok/s, got {value:.6g}\n  → {hint}")


# -- Task 7.2 benchmark ------------------------------------------------------------------------------

def _bench_args(phase: str, repeats: int, warmup: int, **kw) -> dict:
    base, quant, machine = _stub.stub_pair(**kw)
    return {"baseline": base, "quantized": quant, "ids": torch.zeros(1, 32, dtype=torch.long), "phase": phase,
            "gen_len": 8, "repeats": repeats, "warmup": warmup, "clock": machine.clock}


def _bench_cases(seed: int):
    gen = torch.Generator().manual_seed(seed)
    speedup = float(torch.rand(1, generator=gen) * 2 + 1.2)
    return [("decode, 3 repeats, a quiet machine", _bench_args("decode", 3, 1)),
            ("prefill, 4 repeats (even: the median is the mean of the middle two)",
             _bench_args("prefill", 4, 1, speedup=speedup)),
            ("prefill, 2 repeats, 0.5 s compile on each model's first call (needs the warm-up)",
             _bench_args("prefill", 2, 1, compile_s=0.5, speedup=speedup)),
            ("prefill, 5 repeats, the machine slows down ~5 % per run (needs interleaved pairs)",
             _bench_args("prefill", 5, 1, drift=3.0, speedup=speedup)),
            ("decode, 5 repeats, slowing machine, no warm-up asked", _bench_args("decode", 5, 0, drift=3.0)),
            ("prefill, 3 repeats, 0.5 s compile and no warm-up asked (one slow first pair: needs the median)",
             _bench_args("prefill", 3, 0, compile_s=0.5, speedup=speedup))]


def _bench_compare(got, ref, args) -> None:
    names = ("tokens_per_s", "baseline_tokens_per_s", "speedup")
    values = [_as_number(f"benchmark: {n}", v) for n, v in zip(names, got)]
    drifting = args["baseline"].machine.drift > 0
    for n, v, r in zip(names, values, ref):
        if drifting and n != "speedup":
            continue   # on a slowing machine only the paired ratio is stable
        tol = 0.08 if drifting else 1e-6
        if not (math.isfinite(v) and abs(v - r) <= tol * abs(r)):
            hint = {"tokens_per_s": "the median of the quantized model's tokens/s over the timed repeats",
                    "baseline_tokens_per_s": "the median of the baseline's tokens/s over the timed repeats",
                    "speedup": "the median over repeats of quantized/baseline tokens/s of the same pair"}[n]
            if args["baseline"].compile_s and args["warmup"] == 0:
                hint += (" — take the median, not the mean: the first pair pays a one-time compile, and one slow run "
                         "must not move the result")
            elif args["baseline"].compile_s and n != "speedup":
                hint += " — run `warmup` untimed runs of each model first: the first call of each pays a compile"
            if drifting:
                hint = ("time the two models in pairs (baseline, quantized), alternating the order, not one block "
                        "after the other: the machine slows down while you measure")
            raise GradingError(f"{n}: expected {r:.6g}, got {v:.6g}\n  → {hint}")


def _bench_reference(baseline, quantized, ids, phase, gen_len, repeats=5, warmup=1, clock=time.perf_counter):
    r = _stub.benchmark(baseline, quantized, ids, phase, gen_len, repeats, warmup, clock)
    return r["tokens_per_s"], r["baseline_tokens_per_s"], r["speedup"]


# -- Task 7.3 int8_matmul ----------------------------------------------------------------------------

def _int8_reference(a: torch.Tensor, b: torch.Tensor):
    qa, sa, qb, sb = _acc.quantize_operands(a, b, "int8")
    acc = qa.to(torch.int32) @ qb.to(torch.int32)
    return acc, acc.float() * sa[:, None] * sb[None, :]


def _int8_cases(seed: int):
    gen = torch.Generator().manual_seed(seed)
    worked_a = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0]])
    worked_b = torch.tensor([[0.5, -1.0], [0.25, 2.0], [-1.0, 0.1]])
    a = torch.randn(8, 64, generator=gen)
    b = torch.randn(64, 12, generator=gen) * 0.05
    a_out = a.clone()
    a_out[:, 5] *= 40.0                                                   # an outlier channel
    big_a = torch.rand(2, 4096, generator=gen) + 1.0                       # codes near +127 everywhere:
    big_b = torch.rand(4096, 3, generator=gen) + 1.0                       # sums of ~5e7 > 2^24
    return [("worked example (2, 3) @ (3, 2), a zero row", (worked_a, worked_b)),
            ("(8, 64) @ (64, 12)", (a, b)), ("(8, 64) with an outlier channel", (a_out, b)),
            ("(2, 4096) @ (4096, 3), all codes near 127: sums beyond 2^24", (big_a, big_b))]


def _int8_compare(got, ref, args) -> None:
    acc, c = got
    r_acc, r_c = ref
    for label, t in (("acc", acc), ("c", c)):
        if not isinstance(t, torch.Tensor):
            raise GradingError(f"{label}: expected a torch tensor, got {type(t).__name__}")
    if acc.dtype != torch.int32:
        raise GradingError(f"acc: expected dtype torch.int32, got {acc.dtype}\n  → multiply the int8 codes as "
                           "int32 (e.g. .to(torch.int32)) so the sums are exact integers")
    if tuple(acc.shape) != tuple(r_acc.shape) or tuple(c.shape) != tuple(r_c.shape):
        raise GradingError(f"expected acc and c of shape {tuple(r_acc.shape)}, got {tuple(acc.shape)} and "
                           f"{tuple(c.shape)}\n  → (M, K) @ (K, N) gives (M, N)")
    if not torch.equal(acc, r_acc):
        bad = int((acc != r_acc).sum())
        raise GradingError(f"acc: {bad} of {acc.numel()} integer sums differ from the reference (largest "
                           f"difference {int((acc.long() - r_acc.long()).abs().max())})\n  → codes: round(x / s) "
                           "half to even, clip to ±127, s = row max|a| / 127 (per row of a) and column max|b| / 127 "
                           "(per column of b), s = 1 for an all-zero row; then sum products in int32")
    if c.dtype != torch.float32:
        raise GradingError(f"c: expected dtype torch.float32, got {c.dtype}")
    err = (c.double() - r_c.double()).abs().max().item()
    if not err <= 1e-6 * r_c.double().abs().max().item() + 1e-12:
        raise GradingError(f"c: largest difference {err:.3g} from acc · sa[m] · sb[n]\n  → rescale each sum by "
                           "its row's scale of a and its column's scale of b")


# -- Task 7.4 limited_accumulate ---------------------------------------------------------------------

def _e4m3(t: torch.Tensor) -> torch.Tensor:
    return t.clamp(-448, 448).to(torch.float8_e4m3fn).float()


def _limited_cases(seed: int):
    gen = torch.Generator().manual_seed(seed)
    worked_a = torch.tensor([[8.0, 1.0, 1.0, 1.0]])
    worked_b = torch.tensor([[1.0], [0.5], [0.5], [0.5]])
    pos_a = _e4m3(torch.rand(4, 1024, generator=gen) * 8)
    pos_b = _e4m3(torch.rand(1024, 6, generator=gen) * 8)
    sgn_a = _e4m3(torch.randn(3, 700, generator=gen) * 20)
    sgn_b = _e4m3(torch.randn(700, 5, generator=gen) * 20)
    return [("worked example, acc_bits = 4, no promotion", (worked_a, worked_b, 4, None)),
            ("worked example, acc_bits = 4, promote every 2", (worked_a, worked_b, 4, 2)),
            ("(4, 1024) @ (1024, 6) positive, 14 bits", (pos_a, pos_b, 14, None)),
            ("same, promoted every 128", (pos_a, pos_b, 14, 128)),
            ("(3, 700) signed, 10 bits, promote every 128 (last chunk of 60)", (sgn_a, sgn_b, 10, 128))]


def _limited_compare(got, ref, args) -> None:
    qa, qb = args[0], args[1]
    if not isinstance(got, torch.Tensor):
        raise GradingError(f"expected a torch tensor, got {type(got).__name__}")
    if got.dtype != torch.float32 or tuple(got.shape) != tuple(ref.shape):
        raise GradingError(f"expected float32 {tuple(ref.shape)}, got {got.dtype} {tuple(got.shape)}")
    exact = qa.double() @ qb.double()
    scale = torch.linalg.vector_norm(ref.double()).item() or 1.0
    own_error = torch.linalg.vector_norm(ref.double() - exact).item() / scale
    dist = torch.linalg.vector_norm(got.double() - ref.double()).item() / scale
    if dist <= max(1e-6, 0.02 * own_error):
        return
    mine = torch.linalg.vector_norm(got.double() - exact).item() / scale
    hint = ("round the running sum to acc_bits significant bits after every single addition (torch.frexp gives "
            "m·2^e with 0.5 ≤ |m| < 1: round m·2^acc_bits, then scale back)")
    if mine < 0.1 * own_error:
        hint = "your sum is (almost) exact: the accumulator must lose precision — " + hint
    elif args[3] is not None:
        hint += f"; every {args[3]} elements of K add the partial sum into a float32 total and restart it at 0"
    raise GradingError(f"relative distance to the reference {dist:.3g} (the reference's own error vs the exact "
                       f"sum is {own_error:.3g})\n  → {hint}")


# -- Task 7.5 matmul_rel_error -----------------------------------------------------------------------

def _rel_error_reference(a: torch.Tensor, b: torch.Tensor, fmt: str, granularity: str) -> float:
    c = a.double() @ b.double()
    return float(_me.error_metrics(c, _me.quantized_product(a, b, fmt, granularity, False))[2])


def _rel_error_cases(seed: int):
    gen = torch.Generator().manual_seed(seed)
    worked_a = torch.tensor([[1.0, 2.0], [0.5, -1.0]])
    worked_b = torch.tensor([[0.1, 3.3], [-4.0, 0.02]])
    a = torch.randn(16, 64, generator=gen)
    b = torch.randn(64, 24, generator=gen)
    b_cols = b * torch.logspace(-2, 1, 24)                 # columns of very different size
    b_out = b.clone()
    b_out[5, 3], b_out[40, 17] = 60.0, -45.0               # two outliers
    return [("worked example (2×2), int8 per-row", (worked_a, worked_b, "int8", "row")),
            ("(16, 64) @ (64, 24), int8 per-row", (a, b, "int8", "row")),
            ("same, fp8 per-row", (a, b, "fp8_e4m3", "row")),
            ("columns of B from 0.01 to 10, int8 per-tensor", (a, b_cols, "int8", "tensor")),
            ("same B, int8 per-row (per-row means per column of B)", (a, b_cols, "int8", "row")),
            ("B with two outliers, fp8 per-tensor", (a, b_out, "fp8_e4m3", "tensor"))]


def _rel_error_compare(got, ref, args) -> None:
    value = _as_number("matmul_rel_error", got)
    if not math.isfinite(value) or abs(value - ref) > 2e-3 * abs(ref) + 1e-12:
        raise GradingError(f"expected {ref:.6g}, got {value:.6g}\n  → quantize B as the weight W = B.T (rows "
                           "reduce over K), compute A @ fq(B) and ‖C − Ĉ‖_F / ‖C‖_F in float64")


# the stub's own machinery may be called from the student's timing loop; its answers (run_seconds,
# tokens_per_s) and labkit's loops (time_phase, benchmark) may not
_STUB_ALLOWED = (_stub.StubLM.__call__, _stub.StubMachine.clock, _stub.StubMachine.spend, _stub.StubLM.parameters,
                 _stub.StubLM.eval, _stub.StubCache.get_seq_length)

SPECS = (
    CaseCheck(name="time_phase", task=_TASKS["time_phase"], reference=_stub.time_phase, cases=_time_cases,
              compare=_time_compare, watch=("bench",), allowed=_STUB_ALLOWED, language="Python/torch"),
    CaseCheck(name="benchmark", task=_TASKS["benchmark"], reference=_bench_reference, cases=_bench_cases,
              compare=_bench_compare, n_outputs=3, watch=("bench",), allowed=_STUB_ALLOWED,
              deps={"time_phase": _stub.time_phase}, language="Python/torch"),
    CaseCheck(name="int8_matmul", task=_TASKS["int8_matmul"], reference=_int8_reference, cases=_int8_cases,
              compare=_int8_compare, n_outputs=2, watch=("quant",), language="torch", mutation_fails=True),
    CaseCheck(name="limited_accumulate", task=_TASKS["limited_accumulate"], reference=_acc.limited_accumulate,
              cases=_limited_cases, compare=_limited_compare, watch=("quant",), language="torch",
              mutation_fails=True),
    CaseCheck(name="matmul_rel_error", task=_TASKS["matmul_rel_error"], reference=_rel_error_reference,
              cases=_rel_error_cases, compare=_rel_error_compare, watch=("bench",), allowed=(_fake_quantize,),
              language="Python/torch", mutation_fails=True),
)
for _spec in SPECS:
    register(_spec)
NAMES = tuple(s.name for s in SPECS)


def check_bench(name: str, fn, *, seed: int = 0, points: float | None = None) -> Score | None:
    """Grade the student's function ``fn`` for exercise ``name`` (see the module docstring)."""
    if name not in NAMES:
        raise KeyError(f"unknown notebook-07 exercise {name!r}; known: {', '.join(NAMES)}")
    return grade(name, fn, seed=seed, points=points, plot=False)


freeze_module(__name__)
