"""The tiny random models load, run forward, are seeded, and save as a reloadable HF folder."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from labkit.models.tiny import ARCHS, save_tiny, tiny_config, tiny_model, tiny_tokenizer

EXPECTED_CLASS = {"qwen3": "Qwen3ForCausalLM", "qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM"}
DECODER_LINEARS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.mark.parametrize("arch", ARCHS)
def test_architecture_and_forward(arch):
    model = tiny_model(arch)
    assert type(model).__name__ == EXPECTED_CLASS[arch]
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert DECODER_LINEARS <= names, f"decoder linears missing: {DECODER_LINEARS - names}"
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params * 4 < 5e6, f"tiny model should be a few MB at most, has {n_params} params"
    ids = torch.randint(0, 320, (2, 7))
    logits = model(ids).logits
    assert logits.shape == (2, 7, 320)
    assert torch.isfinite(logits).all()


def test_qwen3_has_qk_norm_and_gqa():
    model = tiny_model("qwen3")
    attn = model.model.layers[0].self_attn
    assert hasattr(attn, "q_norm") and hasattr(attn, "k_norm")
    assert attn.k_proj.out_features * 2 == attn.q_proj.out_features  # 2 kv heads for 4 query heads


def test_seeded_and_rng_untouched():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = tiny_model("qwen3", seed=5)
    assert torch.equal(torch.rand(3), expected_next), "tiny_model must not consume the global RNG"
    b = tiny_model("qwen3", seed=5)
    c = tiny_model("qwen3", seed=6)
    for (n, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), f"{n} differs between two builds with the same seed"
    assert not torch.equal(a.model.layers[0].mlp.up_proj.weight, c.model.layers[0].mlp.up_proj.weight)


def test_dtype():
    assert tiny_model("llama", dtype=torch.bfloat16).model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16


def test_unknown_arch():
    with pytest.raises(ValueError, match="qwen3"):
        tiny_config("gpt2")


def test_tokenizer_roundtrip_and_single_token_answers():
    tok = tiny_tokenizer()
    text = "Answer: B\n\nNaïve café — 3.14"
    ids = tok(text).input_ids
    assert tok.decode(ids) == text
    assert max(ids) < 320
    for letter in "ABCD":
        assert len(tok(" " + letter, add_special_tokens=False).input_ids) == 1


def test_save_and_reload(tmp_path):
    folder = save_tiny(tmp_path / "tiny", "qwen2", seed=1)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = torch.tensor([tok("hello world").input_ids])
    torch.testing.assert_close(model(ids).logits, tiny_model("qwen2", seed=1)(ids).logits)
