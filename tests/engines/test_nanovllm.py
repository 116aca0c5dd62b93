"""The nano-vllm weight-loader swap, on the real nano-vllm layer classes and loader.

On CPU the classes come from the PyPI package ``nano-vllm-fork`` (same ``nanovllm.layers.linear``
and ``nanovllm.utils.loader`` as upstream), installed with ``pip install --no-deps
nano-vllm-fork==20260210``; its CUDA-only pieces get stand-ins here: the attention module (flash-attn
+ triton kernels, never called by these tests), ``xxhash`` (prefix-cache hashing in the scheduler)
and the two ``torch.distributed`` queries (rank 0 of 1). The test skips if nanovllm is absent.
"""

import importlib.util
import sys
import types

import pytest
import torch
from torch import nn

from labkit.models.tiny import save_tiny, tiny_config, tiny_model


def _stand_in(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


class _AttentionStandIn(nn.Module):
    """Same constructor as nano-vllm's Attention; the swap never runs attention."""

    def __init__(self, num_heads, head_dim, scale, num_kv_heads):
        super().__init__()
        self.k_cache = self.v_cache = torch.tensor([])


@pytest.fixture(scope="module")
def nano():
    if importlib.util.find_spec("nanovllm") is None:
        pytest.skip("nanovllm not installed (CPU: pip install --no-deps nano-vllm-fork==20260210)")
    mp = pytest.MonkeyPatch()
    if importlib.util.find_spec("flash_attn") is None and "nanovllm.layers.attention" not in sys.modules:
        mp.setitem(sys.modules, "nanovllm.layers.attention", _stand_in("nanovllm.layers.attention",
                                                                        Attention=_AttentionStandIn))
    if importlib.util.find_spec("xxhash") is None:
        mp.setitem(sys.modules, "xxhash", _stand_in("xxhash", xxh64=None))
    import torch.distributed as dist

    if not dist.is_initialized():
        mp.setattr(dist, "get_rank", lambda *a, **k: 0)
        mp.setattr(dist, "get_world_size", lambda *a, **k: 1)
    import nanovllm.engine.model_runner as runner_module
    from nanovllm.layers.linear import LinearBase
    from nanovllm.models.qwen3 import Qwen3ForCausalLM

    yield types.SimpleNamespace(runner=runner_module, LinearBase=LinearBase, Qwen3ForCausalLM=Qwen3ForCausalLM)
    mp.undo()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny-qwen3"), "qwen3", seed=0)


def _nano_model(nano):
    d = tiny_config("qwen3").to_dict()
    # nano-vllm's get_rope caches on its arguments; transformers 5 puts a dict in rope_scaling
    d.update(rope_scaling=None, rope_theta=10000.0)
    return nano.Qwen3ForCausalLM(types.SimpleNamespace(**d))


def _load(nano, folder):
    model = _nano_model(nano)
    nano.runner.load_model(model, str(folder))  # the name ModelRunner.__init__ calls
    return model


def test_loader_fills_the_merged_layers_from_the_checkpoint(nano, folder):
    hf = tiny_model("qwen3", seed=0).model.layers[0]
    ref = _load(nano, folder).model.layers[0]
    a = hf.self_attn
    torch.testing.assert_close(ref.self_attn.qkv_proj.weight,
                               torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]), rtol=0, atol=0)
    torch.testing.assert_close(ref.mlp.gate_up_proj.weight, torch.cat([hf.mlp.gate_proj.weight, hf.mlp.up_proj.weight]),
                               rtol=0, atol=0)


@pytest.mark.parametrize("scheme", ["int8-row", "int8-group64", "fp8-row"])
def test_swap_replaces_every_linear_and_matches_labkit_quantlinear(nano, folder, scheme):
    from labkit.engines.nanovllm import quantized_loading
    from labkit.nn import QuantLinear

    original = dict((n, m) for n, m in _load(nano, folder).named_modules() if isinstance(m, nano.LinearBase))
    assert len(original) == 2 * 4  # qkv, o, gate_up, down in each of 2 layers
    with quantized_loading(scheme) as reports:
        model = _nano_model(nano)
        nano.runner.load_model(model, str(folder))
    assert nano.runner.load_model.__name__ == "load_model", "the loader must be restored after the block"
    assert not any(isinstance(m, nano.LinearBase) for m in model.modules()), "a nano-vllm linear was not swapped"
    (report,) = reports
    assert set(report.layers) == set(original) and report.bytes_after < 0.3 * report.bytes_before
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    for name, old in original.items():
        new = model.get_submodule(name)
        assert isinstance(new, QuantLinear) and new.mode == "real"
        plain = nn.Linear(old.weight.shape[1], old.weight.shape[0], bias=False)
        plain.weight.data.copy_(old.weight)
        labkit_own = QuantLinear.from_float(plain, scheme, mode="real")
        x_in = torch.randn(5, old.weight.shape[1], generator=torch.Generator().manual_seed(1)) if name.endswith(("o_proj", "down_proj")) else x
        torch.testing.assert_close(new(x_in), labkit_own(x_in), rtol=0, atol=0)
        assert not torch.equal(new.dequantized_weight(), old.weight), f"{name}: weights unchanged"


def test_lm_head_swap_keeps_last_position_per_sequence_in_prefill(nano, folder):
    from nanovllm.utils.context import reset_context, set_context

    from labkit.engines.nanovllm import QuantLMHead, swap_linears

    model = _load(nano, folder)
    head_weight = model.lm_head.weight.detach().clone()
    report = swap_linears(model, "int8-row", include_lm_head=True)
    assert isinstance(model.lm_head, QuantLMHead) and "lm_head" in report.layers
    h = torch.randn(5, 64)
    set_context(True, cu_seqlens_q=torch.tensor([0, 3, 5]))
    try:
        logits = model.compute_logits(h)  # two sequences of 3 and 2 tokens → their last rows, 2 and 4
    finally:
        reset_context()
    assert logits.shape == (2, 320)
    torch.testing.assert_close(logits, h[[2, 4]] @ head_weight.T, rtol=0.05, atol=0.05)


def test_bad_requests_are_named(nano, folder):
    from labkit.engines.nanovllm import quantized_llm, swap_linears

    with pytest.raises(ValueError, match="no nano-vllm LinearBase"):
        swap_linears(nn.Sequential(nn.Linear(4, 4)), "int8-row")
    with pytest.raises(ValueError, match="tensor_parallel_size=1"):
        quantized_llm(str(folder), "int8-row", tensor_parallel_size=2)
    model = _load(nano, folder)
    model.model.layers[0].mlp.down_proj.weight.data[0, 0] = float("nan")
    with pytest.raises(ValueError, match="down_proj has NaN"):
        swap_linears(model, "int8-row")


@pytest.mark.gpu
def test_quantized_llm_generates_on_cuda(nano):
    """Needs CUDA, real nano-vllm (flash-attn, triton) and a Qwen3 folder in $LABKIT_NANOVLLM_MODEL."""
    import os

    from nanovllm import SamplingParams

    from labkit.engines.nanovllm import close_llm, quantized_llm

    path = os.environ.get("LABKIT_NANOVLLM_MODEL")
    if not path:
        pytest.skip("set LABKIT_NANOVLLM_MODEL to a local Qwen3 folder (e.g. ~/models/Qwen3-0.6B)")
    q = quantized_llm(path, "int8-row", enforce_eager=False, max_model_len=256)
    try:
        out = q.llm.generate(["The capital of France is"], SamplingParams(temperature=0.01, max_tokens=8), use_tqdm=False)
        assert len(out[0]["token_ids"]) == 8
        assert q.report.n_layers > 0 and q.report.bytes_after < 0.6 * q.report.bytes_before
    finally:
        close_llm(q.llm)
