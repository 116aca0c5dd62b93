"""Throughput arithmetic against timings worked out by hand."""

import pytest

from labkit.bench.timing import summarize, tokens_per_second, tokens_processed


def test_tokens_processed_per_phase():
    # prefill counts every prompt token of every sequence, decode every generated one
    assert tokens_processed("prefill", batch=2, prompt_len=128, gen_len=32) == 256
    assert tokens_processed("decode", batch=2, prompt_len=128, gen_len=32) == 64


def test_tokens_per_second_hand_computed():
    assert tokens_per_second("prefill", 1, 128, 32, 0.25) == pytest.approx(512.0)
    assert tokens_per_second("decode", 1, 128, 32, 0.8) == pytest.approx(40.0)
    assert tokens_per_second("decode", 4, 7, 10, 2.0) == pytest.approx(20.0)


def test_summarize_medians_and_paired_speedup():
    # decode, 32 tokens per run; three repeats with a load burst in the middle pair
    base = [0.8, 1.6, 0.8]  # 40, 20, 40 tok/s
    quant = [0.4, 0.8, 0.5]  # 80, 40, 64 tok/s; paired ratios 2.0, 2.0, 1.6
    s = summarize("decode", 1, 128, 32, quant, base)
    assert s.tokens == 32
    assert s.baseline_tokens_per_s == pytest.approx(40.0)
    assert s.tokens_per_s == pytest.approx(64.0)
    assert s.speedup == pytest.approx(2.0)  # the median of the paired ratios, not 64/40 = 1.6
    assert s.seconds == (0.4, 0.8, 0.5) and s.baseline_seconds == (0.8, 1.6, 0.8)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: tokens_processed("generate", 1, 1, 1), "unknown phase 'generate'"),
        (lambda: tokens_processed("decode", 0, 1, 1), "batch must be a positive integer"),
        (lambda: tokens_per_second("decode", 1, 1, 1, 0.0), "seconds must be a positive"),
        (lambda: summarize("decode", 1, 1, 1, [0.1], [0.1, 0.2]), "same non-zero number"),
    ],
)
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_paired_seconds_alternates_the_order_and_keeps_pairs():
    from labkit.bench.timing import paired_seconds

    calls = []

    def side(name, seconds):
        def run():
            calls.append(name)
            return seconds
        return run

    cand, base = paired_seconds(side("B", 2.0), side("C", 1.0), repeats=3, warmup=1)
    assert calls == ["B", "C", "B", "C", "C", "B", "B", "C"]
    assert cand == [1.0] * 3 and base == [2.0] * 3
    with pytest.raises(ValueError, match="repeats must be"):
        paired_seconds(side("B", 1.0), side("C", 1.0), repeats=0)
