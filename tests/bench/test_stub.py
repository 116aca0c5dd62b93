"""The stub model's known cost: labkit's own timer (real sleeps) measures what the closed form says."""

import torch

from labkit.bench.stub import StubLM, StubMachine, benchmark, stub_pair, time_phase
from labkit.bench.throughput import time_pair


def test_virtual_clock_gives_the_closed_form():
    m = StubMachine()
    model = StubLM("m", m, call_s=0.002, token_s=0.0005)
    ids = torch.zeros(1, 64, dtype=torch.long)
    assert abs(time_phase(model, ids, "prefill", 16, m.clock) - 64 / 0.034) < 1e-6
    assert abs(time_phase(model, ids, "decode", 16, m.clock) - 400.0) < 1e-6


def test_labkit_timer_on_the_sleeping_stub_agrees_with_the_closed_form():
    # sleeps long next to the loop's own Python, so a loaded machine only adds a little on top
    base, quant, _ = stub_pair(sleep=True, call_s=0.02, token_s=0.005)
    ids = torch.zeros(1, 16, dtype=torch.long)
    t = time_pair(base, quant, "decode", ids, 4, repeats=3, warmup=1, runner="hf")
    want = base.tokens_per_s("decode", 1, 16, 4)
    assert 0.6 * want < t.baseline_tokens_per_s <= 1.02 * want    # a timer can only add time to a sleep
    assert 1.4 < t.speedup <= 2.1


def test_interleaved_pairs_cancel_a_slowing_machine():
    base, quant, m = stub_pair(drift=3.0, speedup=2.0)
    r = benchmark(base, quant, torch.zeros(1, 32, dtype=torch.long), "prefill", 8, repeats=5, clock=m.clock)
    assert abs(r["speedup"] - 2.0) < 0.15


def test_benchmark_warms_up_alternates_and_gives_the_closed_form():
    # a compile on each stub's first call: the warm-up pair absorbs it, so every timed run costs the closed form
    base, quant, m = stub_pair(compile_s=0.5, speedup=2.0)
    ids = torch.zeros(1, 32, dtype=torch.long)
    r = benchmark(base, quant, ids, "prefill", 8, repeats=3, warmup=1, clock=m.clock)
    assert m.runs == ["baseline", "quantized",                               # warm-up
                      "baseline", "quantized", "quantized", "baseline", "baseline", "quantized"]
    assert abs(r["tokens_per_s"] - quant.tokens_per_s("prefill", 1, 32, 8)) < 1e-6 * r["tokens_per_s"]
    assert abs(r["baseline_tokens_per_s"] - base.tokens_per_s("prefill", 1, 32, 8)) < 1e-6 * r["tokens_per_s"]
    assert abs(r["speedup"] - 2.0) < 1e-9
