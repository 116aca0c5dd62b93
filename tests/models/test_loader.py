"""load_model: tiny names, local folders, clear errors for missing models and unsupported architectures."""

import json

import pytest
import torch

from labkit.models.loader import ModelNotFoundError, load_model
from labkit.models.tiny import save_tiny, tiny_model


def test_tiny_name():
    lm = load_model("tiny-qwen3")
    assert lm.arch == "qwen3" and type(lm.model).__name__ == "Qwen3ForCausalLM"
    assert not lm.model.training
    model, tokenizer = lm  # unpacks like a pair
    assert tokenizer(" A", add_special_tokens=False).input_ids == [257]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3"])
def test_local_folder(tmp_path, arch):
    folder = save_tiny(tmp_path / arch, arch, seed=3)
    lm = load_model(str(folder), dtype=torch.bfloat16)
    assert lm.arch == arch
    assert lm.model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    ref = tiny_model(arch, seed=3).model.layers[0].mlp.up_proj.weight.to(torch.bfloat16)
    assert torch.equal(lm.model.model.layers[0].mlp.up_proj.weight, ref)


def test_missing_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelNotFoundError, match="huggingface-cli download"):
        load_model(str(tmp_path / "no-such-model"))


def test_hub_id_offline_says_how_to_get_it():
    with pytest.raises(ModelNotFoundError, match="huggingface-cli download Org/NoSuchModel-1B"):
        load_model("Org/NoSuchModel-1B", local_files_only=True)


def test_unsupported_architecture(tmp_path):
    folder = save_tiny(tmp_path / "m", "llama")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="llama, qwen2, qwen3"):
        load_model(str(folder))
