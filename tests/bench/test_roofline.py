"""Roofline arithmetic against parameter counts and times worked out by hand."""

import pytest
from transformers import LlamaConfig, Qwen3Config

from labkit.bench.roofline import HARDWARE, model_matmul_params, roofline

SMOLLM2 = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                      num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True)
QWEN3_17B = Qwen3Config(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                        num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=True)


def test_smollm2_matmul_params_by_hand():
    # per layer: q 576·576, k and v 576·192 each, o 576·576, gate/up/down 3·576·1536
    per_layer = 576 * 576 * 2 + 2 * 576 * 192 + 3 * 576 * 1536
    assert per_layer == 3_538_944
    assert model_matmul_params(SMOLLM2, include_lm_head=False) == 30 * per_layer
    assert model_matmul_params(SMOLLM2) == 30 * per_layer + 49152 * 576 == 134_479_872


def test_qwen3_matmul_params_uses_head_dim():
    per_layer = 2048 * 2048 * 2 + 2 * 2048 * 1024 + 3 * 2048 * 6144
    assert model_matmul_params(QWEN3_17B) == 28 * per_layer + 151936 * 2048 == 1_720_451_072


def test_decode_is_memory_bound_and_prefill_compute_bound_on_a_4090():
    hw = HARDWARE["rtx4090"]
    p = 1_720_451_072
    dec = roofline(p, 1, 2, hw.tflops["bf16"], hw.bandwidth_gb_s)
    assert dec.bound == "memory"
    assert dec.memory_s == pytest.approx(p * 2 / 1008e9)  # 3.41 ms
    assert dec.intensity == pytest.approx(1.0)  # 2 FLOP per 2-byte weight
    pre = roofline(p, 1024, 2, hw.tflops["bf16"], hw.bandwidth_gb_s)
    assert pre.bound == "compute"
    assert pre.compute_s == pytest.approx(2 * p * 1024 / 165e12)  # 21.4 ms
    int8 = roofline(p, 1024, 1, hw.tflops["int8"], hw.bandwidth_gb_s)
    assert pre.compute_s / int8.compute_s == pytest.approx(4.0)


def test_roofline_rejects_non_positive_inputs():
    with pytest.raises(ValueError, match="must all be positive"):
        roofline(0, 1, 1, 1, 1)


def test_measured_bandwidth_is_a_plausible_read_rate():
    from labkit.bench.roofline import measure_bandwidth

    bw = measure_bandwidth(nbytes=64 << 20, repeats=2, threads=1)
    # 64 MiB summed in well under a second and not faster than any machine reads (1 TB/s from one core)
    assert 0.05 < bw.gb_s < 1000 and bw.nbytes == 64 << 20 and bw.threads == 1
    with pytest.raises(ValueError, match="nbytes must be"):
        measure_bandwidth(nbytes=1000)


def test_decode_bytes_by_hand():
    import torch

    from labkit.bench.decode import decode_bytes, roofline_fields
    from labkit.models import tiny_model

    m = tiny_model("llama", seed=0)
    c = m.config
    d = c.hidden_size // c.num_attention_heads
    linears = sum(x.weight.numel() for n, x in m.named_modules() if isinstance(x, torch.nn.Linear))
    got = decode_bytes(m, prompt_len=10, gen_len=5, runner="lean")
    assert got.weights == 4 * (linears + c.hidden_size)  # float32 linears + one embedding row
    assert got.kv == 2 * c.num_hidden_layers * c.num_key_value_heads * d * 4 * 13  # mean context 10 + 3
    f = roofline_fields(50.0, got, 10.0)
    assert f["roofline_tokens_per_s"] == pytest.approx(10e9 / got.total)
    assert f["roofline_fraction"] == pytest.approx(50.0 / f["roofline_tokens_per_s"])
