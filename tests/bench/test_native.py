"""labkit.bench.native: the one-C-call decode step against the eager PyTorch path (labkit.bench.lean,
itself checked against transformers in test_lean.py), and its weight packing against
QuantLinear.dequantized_weight."""

import ctypes

import pytest
import torch
from torch import nn

from labkit.bench.lean import LeanDecoder
from labkit.models import tiny_model
from labkit.nn import QuantLinear, quantize_model
from labkit.quant import PerGroup, PerRow, PerTensor
from labkit.schemes import WeightOnly

native = pytest.importorskip("labkit.bench.native")

SCHEMES = ["none", "int8-row", "int8-tensor", "int8-group64", "fp8-row", "fp8-group64", "fp8-tensor",
           WeightOnly("fp8_e5m2", PerRow())]


@pytest.fixture(scope="module", autouse=True)
def library():
    try:
        return native.load_library()
    except native.NativeUnavailable as err:
        pytest.skip(str(err))


def _eager_greedy(model, ids, steps):
    """Tokens and last-position logits of greedy decoding through the eager lean path."""
    lean = LeanDecoder(model)
    state = lean.start(1, ids.shape[1] + steps + 1)
    with torch.inference_mode():
        logits = lean.step(ids, state)
        tokens, all_logits = [], [logits[0]]
        for _ in range(steps):
            tokens.append(int(logits[0].argmax()))
            logits = lean.step(torch.tensor([[tokens[-1]]]), state)
            all_logits.append(logits[0])
    return tokens, all_logits


def _native_greedy(model, ids, steps, threads=1):
    dec = native.NativeDecoder(model, ids.shape[1] + steps + 1, threads=threads)
    tok = dec.prefill(ids)
    tokens, all_logits = [], [dec.logits.clone()]
    for _ in range(steps):
        tokens.append(tok)
        tok = dec.step(tok)
        all_logits.append(dec.logits.clone())
    return tokens, all_logits


# every scheme on Qwen3 (q/k norms); Qwen2 (q/k/v biases) and Llama with a few
CASES = [("qwen3", s) for s in SCHEMES] + [("qwen2", s) for s in ("none", "int8-tensor", "fp8-row")] + \
    [("llama", s) for s in ("none", "int8-row", "int8-group64")]


@pytest.mark.parametrize("arch, scheme", CASES, ids=lambda v: str(v))
def test_native_decode_equals_the_eager_path(arch, scheme):
    base = tiny_model(arch, seed=0)
    model = base if scheme == "none" else quantize_model(base, scheme, "real", include_lm_head=True).model
    ids = torch.randint(1, 300, (1, 7), generator=torch.Generator().manual_seed(1))
    want_tokens, want_logits = _eager_greedy(model, ids, 8)
    got_tokens, got_logits = _native_greedy(model, ids, 8)
    assert got_tokens == want_tokens, f"{arch} {scheme}: native decoded {got_tokens}, eager {want_tokens}"
    # INT8 rows go through bf16 activations/sums in both paths: an fp32 summation-order difference can
    # move a bf16 rounding by one step (2^-8 relative), hence the looser bound there
    tol = 2e-2 if str(scheme).startswith("int8") else 1e-4
    for step, (g, w) in enumerate(zip(got_logits, want_logits)):
        torch.testing.assert_close(g, w, rtol=tol, atol=tol * w.abs().max().item(),
                                   msg=lambda m: f"{arch} {scheme}, step {step}: {m}")


def test_two_threads_give_the_same_tokens():
    model = quantize_model(tiny_model("qwen3", seed=2), "int8-row", "real", include_lm_head=True).model
    ids = torch.randint(1, 300, (1, 5), generator=torch.Generator().manual_seed(2))
    assert _native_greedy(model, ids, 6, threads=2)[0] == _native_greedy(model, ids, 6, threads=1)[0]


def _unpack(p):
    """Reassemble the float (N, K) weight a PackedLinear multiplies by, from its blocked layout."""
    w = p.weight.transpose(1, 2).reshape(-1, p.k)[: p.n]  # (N, K) codes or floats
    if p.kind == "float32":
        return w
    values = {"int8": lambda q: q.float(),
              "fp8_e4m3": lambda q: q.view(torch.float8_e4m3fn).float() / native.FP8_REBIAS["fp8_e4m3"],
              "fp8_e5m2": lambda q: q.view(torch.float8_e5m2).float() / native.FP8_REBIAS["fp8_e5m2"]}[p.kind](w)
    if p.group:
        s = p.scale.transpose(1, 2).reshape(-1, p.scale.shape[1])[: p.n]  # (N, G)
        return values * s.repeat_interleave(p.group, dim=1)[:, : p.k]
    return values * p.scale[: p.n, None]


@pytest.mark.parametrize("granularity", [PerTensor(), PerRow(), PerGroup(32)], ids=repr)
@pytest.mark.parametrize("fmt", ["int8", "fp8_e4m3", "fp8_e5m2"])
def test_packing_keeps_the_weight_quantlinear_multiplies_by(fmt, granularity):
    gen = torch.Generator().manual_seed(3)
    layers = []
    for out_f in (40, 24):  # merged like q|k; 64 rows → 4 blocks; 40 is not a multiple of 16
        lin = nn.Linear(72, out_f, bias=False)  # K = 72: a short last group of 8 at g = 32
        with torch.no_grad():
            lin.weight.copy_(torch.randn(out_f, 72, generator=gen))
        layers.append(QuantLinear.from_float(lin, WeightOnly(fmt, granularity), mode="real"))
    packed = native.pack_linears(layers)
    want = torch.cat([m.dequantized_weight() for m in layers])
    torch.testing.assert_close(_unpack(packed), want, rtol=1e-6, atol=0)
    assert packed.weight.shape == (4, 72, 16) and packed.n == 64


def test_float_linear_packs_its_own_weight_and_bias():
    lin = nn.Linear(20, 18)
    p = native.pack_linears([lin])
    torch.testing.assert_close(_unpack(p), lin.weight.detach())
    assert torch.equal(p.bias, lin.bias.detach()) and p.scale is None


def test_bad_inputs_are_named():
    model = tiny_model("qwen3", seed=0)
    dec = native.NativeDecoder(model, 4)
    with pytest.raises(ValueError, match="batch 1"):
        dec.prefill(torch.ones(2, 3, dtype=torch.long))
    dec.prefill(torch.ones(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="cache holds 4 positions"):
        dec.step(1)
    with pytest.raises(ValueError, match="packs nn.Linear"):
        native.pack_linears([nn.Conv1d(3, 3, 1)])
    w8a8 = quantize_model(model, "w8a8-int8", "real").model
    with pytest.raises(ValueError, match="runner lean"):
        native.NativeDecoder(w8a8, 8)


def test_decoder_is_kept_on_its_model_and_copies_drop_it():
    import copy

    model = tiny_model("llama", seed=0)
    first = native.native_decoder(model, 8)
    assert native.native_decoder(model, 6) is first  # room enough: reused
    assert native.native_decoder(model, 12) is not first  # longer: rebuilt
    assert copy.deepcopy(model)._labkit_native_decoder is None


def _teacher_forced(model, ids, tokens):
    """Logits of the eager and the native path, both fed the same ``tokens`` after ``ids``."""
    lean = LeanDecoder(model)
    state = lean.start(1, ids.shape[1] + len(tokens) + 1)
    dec = native.NativeDecoder(model, ids.shape[1] + len(tokens) + 1, threads=1)
    with torch.inference_mode():
        eager = [lean.step(ids, state)[0]] + [lean.step(torch.tensor([[t]]), state)[0] for t in tokens]
    dec.prefill(ids)
    nat = [dec.logits.clone()]
    for t in tokens:
        dec.step(t)
        nat.append(dec.logits.clone())
    return eager, nat


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["none", "int8-row"])
def test_native_decode_equals_the_eager_path_on_the_default_model(scheme):
    """fp32: the same greedy tokens. INT8 rows: both paths round activations and code sums to bf16,
    and a different fp32 summation order moves some roundings by one bf16 step (measured ~6e-3 of
    the largest logit after 30 layers), enough to flip a near-tie of a random prompt. So both paths
    are fed the same tokens and compared step by step: logits within 2e-2 of the largest, and the
    same argmax wherever the eager top-2 margin is larger than that."""
    from labkit.models import load_model

    base, _ = load_model("default")
    model = base if scheme == "none" else quantize_model(base, scheme, "real", include_lm_head=True).model
    ids = torch.randint(0, base.config.vocab_size, (1, 16), generator=torch.Generator().manual_seed(0))
    want_tokens, _ = _eager_greedy(model, ids, 12)
    if scheme == "none":
        assert _native_greedy(model, ids, 12)[0] == want_tokens
    tol = 2e-2 if scheme != "none" else 1e-4
    for step, (w, g) in enumerate(zip(*_teacher_forced(model, ids, want_tokens))):
        scale = w.abs().max().item()
        torch.testing.assert_close(g, w, rtol=0, atol=tol * scale, msg=lambda m: f"step {step}: {m}")
        top2 = w.topk(2).values
        if (top2[0] - top2[1]).item() > tol * scale:
            assert int(g.argmax()) == int(w.argmax()), f"step {step}: argmax differs with a clear margin"


def _big_linear(fmt, granularity, n=2064, k=576, seed=5):
    """Above the native step's parallel threshold (128 KiB of weights), many 64 KiB chunks; N not a multiple of 16·chunk."""
    lin = nn.Linear(k, n, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n, k, generator=torch.Generator().manual_seed(seed)) * 0.05)
    if fmt == "float32":
        return lin
    return QuantLinear.from_float(lin, WeightOnly(fmt, granularity), mode="real")


@pytest.mark.parametrize("fmt, granularity", [("float32", None), ("int8", PerRow()), ("int8", PerGroup(64)),
                                              ("fp8_e4m3", PerRow()), ("fp8_e5m2", PerGroup(128))], ids=str)
def test_gemv_equals_a_torch_matmul_and_is_the_same_on_any_thread_count(fmt, granularity):
    layer = _big_linear(fmt, granularity)
    packed = native.pack_linears([layer])
    x = torch.randn(layer.in_features if hasattr(layer, "in_features") else 576,
                    generator=torch.Generator().manual_seed(6)).to(torch.bfloat16).float()  # bf16-exact input
    want = _unpack(packed).double() @ x.double() + layer.bias.detach().double()
    one = native.gemv(packed, x, threads=1)
    tol = 2e-2 if packed.bf16_io else 1e-4  # int8 rows round the code sums to bf16, as the eager kernel
    torch.testing.assert_close(one.double(), want, rtol=tol, atol=tol * want.abs().max().item())
    lib = native.load_library().lib
    for threads in (2, 3):  # every row block is summed by one thread in the same order: bitwise equal
        before = lib.labkit_chunks_by_workers()
        for call in range(200):  # until the pool's workers have done some of the work
            assert torch.equal(native.gemv(packed, x, threads=threads), one), f"{threads} threads, call {call}"
            if call >= 10 and lib.labkit_chunks_by_workers() - before >= 20:
                break
        assert lib.labkit_chunks_by_workers() - before > 0, "the workers never ran a chunk"


def test_gemv_stays_exact_when_the_other_cores_are_busy():
    """The pool's caller never waits for a thread that has not started: with both cores taken by
    spinning processes, 2-thread GEMVs still finish and give the 1-thread result."""
    import subprocess
    import sys

    packed = native.pack_linears([_big_linear("int8", PerRow(), n=4096)])
    x = torch.randn(576, generator=torch.Generator().manual_seed(7))
    want = native.gemv(packed, x, threads=1)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        for _ in range(300):
            assert torch.equal(native.gemv(packed, x, threads=2), want)
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def test_gemv_names_a_wrong_input_shape():
    packed = native.pack_linears([nn.Linear(32, 16)])
    with pytest.raises(ValueError, match=r"x of shape \(32,\)"):
        native.gemv(packed, torch.zeros(31))


def test_the_read_probe_reads_the_whole_tensor_at_a_plausible_rate():
    data = torch.ones(16 << 20)  # 64 MiB
    gb_s = native.gemv_read_gb_s(data, threads=1, repeats=2)
    assert 0.05 < gb_s < 1000
    # the probe is the packed float32 GEMV: on all-ones it must sum each row's 1024 ones
    lin = native.Lin(native.KINDS["float32"], 64, 1024, 0, 0, 0, data.data_ptr(), None, None)
    x, y = torch.ones(1024), torch.zeros(64)
    native.load_library().lib.labkit_gemv(ctypes.addressof(lin), x.data_ptr(), y.data_ptr(), 2)
    assert torch.equal(y, torch.full((64,), 1024.0))
    with pytest.raises(ValueError, match="contiguous float32"):
        native.gemv_read_gb_s(torch.ones(100))
