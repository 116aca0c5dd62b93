"""The lean decoder against transformers' own forward, and the timed loops against uncached greedy."""

import pytest
import torch

from labkit.bench.generation import greedy_decode, prefill
from labkit.bench.lean import LeanDecoder, check_supported
from labkit.models import tiny_model


@pytest.fixture(scope="module", params=["qwen3", "qwen2", "llama"])
def model(request):
    return tiny_model(request.param, seed=0)


def _ids(batch=2, length=10, seed=0):
    return torch.randint(1, 300, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_lean_logits_match_transformers_prefill_chunk_and_steps(model):
    ids = _ids(length=12)
    lean = LeanDecoder(model)
    state = lean.start(batch=2, max_len=12)
    with torch.inference_mode():
        ref = model(ids).logits  # (2, 12, vocab), no cache
        got = [lean.step(ids[:, :5], state), lean.step(ids[:, 5:9], state)]  # prefill, then a 4-token chunk
        got += [lean.step(ids[:, i : i + 1], state) for i in range(9, 12)]  # one-token steps
    for out, pos in zip(got, [4, 8, 9, 10, 11]):
        torch.testing.assert_close(out, ref[:, pos], rtol=1e-4, atol=1e-4)
    assert state.length == 12


@pytest.mark.parametrize("runner", ["lean", "hf"])
def test_greedy_decode_equals_uncached_greedy(model, runner):
    ids = _ids()
    # reference: greedy without any KV cache, the whole sequence re-run every step, no EOS handling
    seq = ids
    with torch.inference_mode():
        for _ in range(6):
            seq = torch.cat([seq, model(seq).logits[:, -1:].argmax(-1)], dim=1)
    ref = seq[:, ids.shape[1]:]
    run = greedy_decode(model, ids, 6, runner=runner)
    assert torch.equal(run.tokens, ref), f"{runner} loop generated {run.tokens.tolist()}, generate gave {ref.tolist()}"
    assert run.seconds > 0
    assert torch.equal(prefill(model, ids, runner=runner).next_tokens, ref[:, 0])


def test_lean_runs_a_real_quantized_model_like_transformers():
    from labkit.nn import quantize_model

    q = quantize_model(tiny_model("qwen3", seed=1), "int8-row", "real", include_lm_head=True).model
    ids = _ids(batch=1)
    lean = LeanDecoder(q)
    with torch.inference_mode():
        torch.testing.assert_close(lean.step(ids, lean.start(1, 10)), q(ids).logits[:, -1], rtol=1e-3, atol=1e-3)


def test_bad_inputs_are_named():
    m = tiny_model("qwen3")
    with pytest.raises(ValueError, match="gen_len must be a positive integer"):
        greedy_decode(m, _ids(), 0)
    with pytest.raises(ValueError, match=r"input_ids must be a non-empty \(batch, prompt_len\)"):
        prefill(m, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="unknown runner 'vllm'"):
        greedy_decode(m, _ids(), 2, runner="vllm")
    m.config.hidden_act = "gelu"
    with pytest.raises(ValueError, match="SiLU-gated MLP"):
        check_supported(m)
