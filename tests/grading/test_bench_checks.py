"""The notebook-07 checks give full points to right answers (written here independently of labkit),
fewer to typical slips (with the hint that names the slip), and 0 to answers that call the reference."""

import statistics
import time

import numpy as np
import torch

import labkit.bench.matmul_error as me
from labkit.bench import stub
from labkit.bench.timing import paired_seconds
from labkit.grading.bench_checks import check_bench
from labkit.quant import PerRow, PerTensor, fake_quantize
from labkit.quant.accumulation import limited_accumulate


def time_phase(model, ids, phase, gen_len, clock=time.perf_counter):
    batch, prompt_len = ids.shape
    if phase == "prefill":
        t0 = clock()
        model(input_ids=ids, use_cache=True)
        return batch * prompt_len / (clock() - t0)
    out = model(input_ids=ids, use_cache=True)
    cache, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
    t0 = clock()
    for _ in range(gen_len):
        out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
        cache, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
    return batch * gen_len / (clock() - t0)


def time_phase_no_cache(model, ids, phase, gen_len, clock=time.perf_counter):
    batch, p = ids.shape
    if phase == "prefill":
        t0 = clock()
        model(input_ids=ids)
        return batch * p / (clock() - t0)
    seq = ids
    model(input_ids=seq)
    t0 = clock()
    for _ in range(gen_len):
        seq = torch.cat([seq, model(input_ids=seq).logits[:, -1:].argmax(-1)], 1)
    return batch * gen_len / (clock() - t0)


def time_phase_wall_clock(model, ids, phase, gen_len, clock=time.perf_counter):
    return time_phase(model, ids, phase, gen_len, time.perf_counter)


def time_phase_cheat(model, ids, phase, gen_len, clock=time.perf_counter):
    b, p = ids.shape
    return model.tokens_per_s(phase, b, p, gen_len)


def paired_tokens_per_s(baseline, quantized, ids, phase, gen_len, repeats, warmup, clock):
    for _ in range(warmup):
        time_phase(baseline, ids, phase, gen_len, clock)
        time_phase(quantized, ids, phase, gen_len, clock)
    b, q = [], []
    for i in range(repeats):
        order = [(baseline, b), (quantized, q)]
        for m, sink in (order if i % 2 == 0 else order[::-1]):
            sink.append(time_phase(m, ids, phase, gen_len, clock))
    return q, b


def benchmark(baseline, quantized, ids, phase, gen_len, repeats=5, warmup=1, clock=time.perf_counter):
    q, b = paired_tokens_per_s(baseline, quantized, ids, phase, gen_len, repeats, warmup, clock)
    return statistics.median(q), statistics.median(b), statistics.median(x / y for x, y in zip(q, b))


def benchmark_blocks(baseline, quantized, ids, phase, gen_len, repeats=5, warmup=1, clock=time.perf_counter):
    for _ in range(warmup):
        time_phase(baseline, ids, phase, gen_len, clock)
        time_phase(quantized, ids, phase, gen_len, clock)
    b = [time_phase(baseline, ids, phase, gen_len, clock) for _ in range(repeats)]
    q = [time_phase(quantized, ids, phase, gen_len, clock) for _ in range(repeats)]
    return statistics.median(q), statistics.median(b), statistics.median(x / y for x, y in zip(q, b))


def benchmark_no_warmup(baseline, quantized, ids, phase, gen_len, repeats=5, warmup=1, clock=time.perf_counter):
    return benchmark(baseline, quantized, ids, phase, gen_len, repeats, 0, clock)


def benchmark_mean(baseline, quantized, ids, phase, gen_len, repeats=5, warmup=1, clock=time.perf_counter):
    q, b = paired_tokens_per_s(baseline, quantized, ids, phase, gen_len, repeats, warmup, clock)
    return statistics.mean(q), statistics.mean(b), statistics.mean(x / y for x, y in zip(q, b))


def _codes(x, axis):
    # numpy, independent of labkit: symmetric int8 per row (axis=1) or per column (axis=0)
    amax = np.abs(x).max(axis=axis, keepdims=True)
    s = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    return np.clip(np.round(x / s), -127, 127).astype(np.int64), s


def int8_matmul(a, b):
    qa, sa = _codes(a.numpy().astype(np.float32), 1)
    qb, sb = _codes(b.numpy().astype(np.float32), 0)
    acc = torch.from_numpy(qa @ qb).to(torch.int32)
    return acc, acc.float() * torch.from_numpy(sa) * torch.from_numpy(sb)


def int8_matmul_float_acc(a, b):
    acc, c = int8_matmul(a, b)
    return acc.float().to(torch.int32), c


def limited(qa, qb, acc_bits, promote_every=None):
    a, b = qa.double().numpy(), qb.double().numpy()
    total = np.zeros((a.shape[0], b.shape[1]), np.float32)
    acc = np.zeros((a.shape[0], b.shape[1]))
    for k in range(a.shape[1]):
        acc = acc + np.outer(a[:, k], b[k])
        m, e = np.frexp(acc)
        acc = np.ldexp(np.round(m * 2.0**acc_bits), e - acc_bits)
        if promote_every and (k + 1) % promote_every == 0:
            total, acc = total + acc.astype(np.float32), np.zeros_like(acc)
    return torch.from_numpy(total + acc.astype(np.float32))


def limited_exact(qa, qb, acc_bits, promote_every=None):
    return (qa.double() @ qb.double()).float()


def rel_error_numpy(a, b, fmt, granularity):
    a64, b64 = a.double().numpy(), b.double().numpy()
    if fmt != "int8":
        g = PerRow() if granularity == "row" else PerTensor()
        bq = fake_quantize(b.T.contiguous(), fmt, g).T.double().numpy()
    else:
        amax = np.abs(b64).max(axis=0, keepdims=True) if granularity == "row" else np.abs(b64).max()
        scale = np.where(amax > 0, amax / 127.0, 1.0)
        bq = np.clip(np.round(b64 / scale), -127, 127) * scale
    c = a64 @ b64
    return float(np.linalg.norm(c - a64 @ bq) / np.linalg.norm(c))


def test_right_answers_score_full(capsys):
    assert check_bench("time_phase", time_phase, seed=1, points=3) == 3.0
    assert check_bench("benchmark", benchmark, seed=1, points=3) == 3.0
    assert check_bench("int8_matmul", int8_matmul, seed=1, points=3) == 3.0
    assert check_bench("limited_accumulate", limited, seed=1, points=4) == 4.0
    assert check_bench("matmul_rel_error", rel_error_numpy, seed=1, points=2) == 2.0
    assert "✗" not in capsys.readouterr().out


def test_slips_lose_points_with_the_hint_that_names_them(capsys):
    assert 0 < check_bench("time_phase", time_phase_no_cache, seed=0, points=3) < 3
    assert "past_key_values" in capsys.readouterr().out
    assert check_bench("time_phase", time_phase_wall_clock, seed=0, points=3) == 0
    assert "clock argument" in capsys.readouterr().out
    assert 0 < check_bench("benchmark", benchmark_blocks, seed=0, points=3) < 3
    assert "alternating the order" in capsys.readouterr().out
    assert 0 < check_bench("benchmark", benchmark_no_warmup, seed=0, points=3) < 3
    assert "compile" in capsys.readouterr().out
    assert 0 < check_bench("benchmark", benchmark_mean, seed=0, points=3) < 3
    assert "the median, not the mean" in capsys.readouterr().out
    assert check_bench("int8_matmul", int8_matmul_float_acc, seed=0, points=3) < 3
    assert check_bench("limited_accumulate", limited_exact, seed=0, points=4) == 0
    assert "almost) exact" in capsys.readouterr().out


def test_calling_the_reference_scores_zero(capsys):
    def calls_reference(a, b, fmt, granularity):
        c = a.double() @ b.double()
        return me.error_metrics(c, me.quantized_product(a, b, fmt, granularity, False))[2]

    def calls_accumulation(qa, qb, acc_bits, promote_every=None):
        return limited_accumulate(qa, qb, acc_bits, promote_every)

    def calls_labkit_loop(baseline, quantized, ids, phase, gen_len, repeats=5, warmup=1, clock=time.perf_counter):
        r = stub.benchmark(baseline, quantized, ids, phase, gen_len, repeats, warmup, clock)
        return r["tokens_per_s"], r["baseline_tokens_per_s"], r["speedup"]

    assert check_bench("matmul_rel_error", calls_reference, seed=0, points=2) == 0
    assert check_bench("limited_accumulate", calls_accumulation, seed=0, points=4) == 0
    assert check_bench("time_phase", time_phase_cheat, seed=0, points=3) == 0
    def calls_paired_seconds(baseline, quantized, ids, phase, gen_len, repeats=5, warmup=1, clock=time.perf_counter):
        b, p = ids.shape
        tokens = b * (p if phase == "prefill" else gen_len)
        q_s, b_s = paired_seconds(lambda: tokens / time_phase(baseline, ids, phase, gen_len, clock),
                                  lambda: tokens / time_phase(quantized, ids, phase, gen_len, clock), repeats, warmup)
        return (statistics.median(tokens / s for s in q_s), statistics.median(tokens / s for s in b_s),
                statistics.median(x / y for x, y in zip(b_s, q_s)))

    assert check_bench("benchmark", calls_labkit_loop, seed=0, points=3) == 0
    assert check_bench("benchmark", calls_paired_seconds, seed=0, points=3) == 0
    assert "calls labkit's reference" in capsys.readouterr().out


def test_stub_not_written_scores_zero_with_one_line(capsys):
    def stub_fn(*args):
        raise NotImplementedError("Task 7.3: int8_matmul")

    assert check_bench("int8_matmul", stub_fn, seed=0, points=3) == 0
    out = capsys.readouterr().out
    assert "not written yet" in out and out.count("\n") == 1
