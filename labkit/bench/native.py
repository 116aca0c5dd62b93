"""A native decode step: one C call per token for batch 1 on CPU, weights packed for the GEMV.

Why. Decode at batch 1 is memory bound (``roofline.py``): one token must read every weight once,
so its time can approach ``bytes per token / read bandwidth``. An eager PyTorch step of SmolLM2
runs ~200 linears and ~600 small ops, each a Python call and a kernel launch of a few µs, and a
library GEMV tuned for big matrices; the int8 kernel ``_weight_int8pack_mm`` reaches only a few
GB/s on this model's 576-wide layers. The overhead is the same for the float32 baseline and the
8-bit model, so it *dilutes* the very effect the lab is about. nano-vllm removes it on GPUs by
capturing the step in a CUDA graph; the CPU equivalent here is to run the whole step as one
compiled function — ``native_decode.c``, built once with the system C compiler (``-O3
-march=native``, pthreads) and cached under ``$LABKIT_CACHE/native`` — that calls nothing else.

Design:

* **Packing (offline, ``pack_linear``).** Every linear — ``nn.Linear`` (float32) or a real-mode
  ``QuantLinear`` — becomes a blocked ``(N/16, K, 16)`` array of its float32 weights or its 8-bit
  codes, plus float32 scales (per row, or ``(N/16, G, 16)`` per K-group). A step along K reads 16
  consecutive weights, the 16 outputs of a block stay in one vector register, four accumulators
  hide the FMA latency: the GEMV streams the bytes once. q|k|v and gate|up are concatenated into
  one GEMV each (per-tensor scales are expanded to per-row, so the arithmetic is unchanged).
* **The step (``labkit_decode_step``).** RMSNorm, the merged projections, Qwen3's per-head q/k
  norm, RoPE from the same cos/sin tables as the eager model, the KV-cache write, attention over
  the cached positions, SiLU-gated MLP, final norm, lm_head, argmax — in float32, with buffers
  allocated once by ``NativeDecoder``. Numerics follow the eager kernels of ``labkit.nn.kernels``:
  INT8 per-row/per-tensor rounds activations and the code sums to bfloat16 exactly as
  ``_weight_int8pack_mm`` does; fp8 codes decode with the shift trick of ``kernels.fp8_code_values``.
* **Prefill stays PyTorch** (``LeanDecoder`` over the same KV cache): it is compute bound and
  already runs library GEMMs — all but its last matmul, the lm_head of the last position, a GEMV like
  every decode step's, which runs natively (an FP8 lm_head GEMV through torch.compile took 27 ms
  where float32 took 8: Inductor decodes e4m3 in scalar code).

Equality with the eager path (same greedy tokens, logits within float tolerance) is tested in
``tests/bench/test_native.py`` for the tiny Llama/Qwen2/Qwen3 models and (slow) the default model.
Threads: ``threads`` threads (the caller and a pool of its own) claim each large GEMV's row blocks in
small chunks; the caller never waits for a thread that has not started, so a busy machine costs the
second thread's share, not a barrier per GEMV (see the pool in ``native_decode.c``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .lean import LeanDecoder, check_supported

SOURCE = Path(__file__).with_name("native_decode.c")
CFLAGS = ("-O3", "-march=native", "-mprefer-vector-width=512", "-pthread", "-shared", "-fPIC", "-std=gnu11", "-ffp-contract=fast")
BLOCK = 16
KINDS = {"float32": 0, "int8": 1, "fp8_e4m3": 2, "fp8_e5m2": 3}
FP8_REBIAS = {"fp8_e4m3": 2.0**120, "fp8_e5m2": 2.0**112}  # 2^(127 - format bias)


class NativeUnavailable(RuntimeError):
    """The native step cannot be built here (no C compiler, or the build failed)."""


# ---- build -------------------------------------------------------------------------------------

def _cache_root() -> Path:
    env = os.environ.get("LABKIT_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "labkit") / "native"


def _machine_key() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return platform.machine() + flags


@dataclass(frozen=True)
class Library:
    lib: Any  # ctypes.CDLL
    path: Path
    build_s: float  # seconds spent compiling in this process (0 when the cached build was used)


_LIBRARY: Library | None = None


def load_library() -> Library:
    """Compile ``native_decode.c`` once per (source, flags, CPU) into the cache and load it."""
    global _LIBRARY
    if _LIBRARY is not None:
        return _LIBRARY
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise NativeUnavailable("no C compiler (cc/gcc) on PATH; the native decode step needs one "
                                "(apt-get install gcc), or use --runner lean")
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join(CFLAGS).encode() + cc.encode() + _machine_key().encode()).hexdigest()[:16]
    path = _cache_root() / key / "native_decode.so"
    build_s = 0.0
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        start = time.perf_counter()
        done = subprocess.run([cc, *CFLAGS, str(SOURCE), "-o", str(tmp), "-lm"], capture_output=True, text=True)
        if done.returncode != 0:
            raise NativeUnavailable(f"{cc} failed to build {SOURCE.name}:\n{done.stderr[-2000:]}")
        os.replace(tmp, path)  # atomic: a concurrent build never loads a half-written file
        build_s = time.perf_counter() - start
    lib = ctypes.CDLL(str(path))
    lib.labkit_decode_step.restype = ctypes.c_int64
    lib.labkit_decode_step.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32]
    lib.labkit_gemv.restype = None
    lib.labkit_gemv.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32]
    lib.labkit_chunks_by_workers.restype = ctypes.c_int64
    lib.labkit_linear.restype = None
    lib.labkit_linear.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    _LIBRARY = Library(lib, path, build_s)
    return _LIBRARY


# ---- packing -----------------------------------------------------------------------------------

class Lin(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int32), ("n", ctypes.c_int32), ("k", ctypes.c_int32), ("group", ctypes.c_int32),
                ("bf16_io", ctypes.c_int32), ("pad_", ctypes.c_int32),
                ("w", ctypes.c_void_p), ("s", ctypes.c_void_p), ("bias", ctypes.c_void_p)]


_P = ctypes.c_void_p


class Model(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in ("n_layers", "hidden", "n_heads", "n_kv", "head_dim", "inter",
                                                    "vocab", "max_len", "qk_norm", "nthreads")] + \
        [("eps", ctypes.c_float), ("attn_scale", ctypes.c_float)] + \
        [(name, _P) for name in ("embed", "final_norm", "cos", "sin", "kcache", "vcache", "x", "h", "xq", "qkv",
                                 "att", "scores", "o", "gu", "act", "logits", "attn_norm", "mlp_norm", "q_norm",
                                 "k_norm", "qkv_proj", "o_proj", "gate_up", "down", "lm_head")]


@dataclass
class PackedLinear:
    """A linear in the native layout. ``nbytes``: what one GEMV reads (weights + scales)."""

    kind: str
    n: int
    k: int
    group: int
    bf16_io: int  # 1: bf16 activations and code sums (eager INT8 rows); 2: also the per-tensor product
    weight: torch.Tensor  # (N/16, K, 16) float32 or int8 bytes
    scale: torch.Tensor | None  # (Npad,) or (N/16, G, 16) float32
    bias: torch.Tensor | None

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.weight, self.scale) if t is not None)

    def struct(self) -> Lin:
        ptr = (lambda t: None if t is None else t.data_ptr())
        return Lin(KINDS[self.kind], self.n, self.k, self.group, self.bf16_io, 0,
                   ptr(self.weight), ptr(self.scale), ptr(self.bias))


def gemv(packed: PackedLinear, x: torch.Tensor, threads: int = 1) -> torch.Tensor:
    """``W x (+ bias)`` of one packed linear through the native GEMV, ``x: (K,)`` float32 → ``(N,)``
    (its numerics are the decode step's: int8 rows with ``bf16_io`` expect ``x`` already in bf16)."""
    if x.shape != (packed.k,):
        raise ValueError(f"the packed linear takes x of shape ({packed.k},); got {tuple(x.shape)}")
    x = x.detach().to(torch.float32).contiguous()
    y = torch.full((packed.n,), float("nan"))  # a row the GEMV missed stays NaN
    lin = packed.struct()
    load_library().lib.labkit_gemv(ctypes.addressof(lin), x.data_ptr(), y.data_ptr(), max(1, int(threads)))
    return y


def gemv_read_gb_s(data: torch.Tensor, threads: int = 1, repeats: int = 5) -> float:
    """Read bandwidth as the decode step sees it: the native float32 GEMV (its loop, prefetch and
    thread pool) over ``data`` — a contiguous float32 tensor, read in place as a (N/16, 1024, 16)
    blocked weight — best of ``repeats``, in GB/s. ``roofline.measure_bandwidth`` uses it beside
    ``torch.sum``."""
    k = 1024
    rows = data.numel() // k // BLOCK * BLOCK
    if data.dtype != torch.float32 or not data.is_contiguous() or rows == 0:
        raise ValueError(f"the probe reads a contiguous float32 tensor of ≥ {k * BLOCK} elements; got "
                         f"{data.dtype}, {data.numel()} elements")
    lin = Lin(KINDS["float32"], rows, k, 0, 0, 0, data.data_ptr(), None, None)
    x, y = torch.ones(k), torch.empty(rows)
    call = load_library().lib.labkit_gemv
    call(ctypes.addressof(lin), x.data_ptr(), y.data_ptr(), max(1, int(threads)))  # first touch
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call(ctypes.addressof(lin), x.data_ptr(), y.data_ptr(), max(1, int(threads)))
        best = min(best, time.perf_counter() - start)
    return rows * k * 4 / best / 1e9


def _blocked(w: torch.Tensor) -> torch.Tensor:
    """(N, K) → (ceil(N/16), K, 16), rows padded with zeros."""
    n, k = w.shape
    pad = -n % BLOCK
    if pad:
        w = torch.cat([w, w.new_zeros(pad, k)])
    return w.reshape(-1, BLOCK, k).transpose(1, 2).contiguous()


def _float_parts(module: nn.Module) -> tuple[str, torch.Tensor, torch.Tensor | None, Any] | None:
    """(kind, codes-or-weight (N, K), per-row/per-group scales or None, granularity) of a linear."""
    from labkit.nn import QuantLinear
    from labkit.quant.granularity import PerGroup

    if isinstance(module, nn.Linear) or (isinstance(module, QuantLinear) and module.mode == "fake"):
        return "float32", module.weight.detach().to(torch.float32), None, None
    if isinstance(module, QuantLinear):
        fmt, g = module.format, module.scheme.granularity
        codes = module.codes()
        scale = module.scale.to(torch.float32)
        kind = fmt.name if fmt.is_float else "int8"
        codes = codes.view(torch.int8)
        if fmt.is_float:
            scale = scale * FP8_REBIAS[fmt.name]
            if not torch.isfinite(scale).all():
                raise ValueError(f"{fmt.name} scales too large to fold 2^{int(torch.log2(torch.tensor(FP8_REBIAS[fmt.name])))} "
                                 "into float32; the native step cannot run this layer")
        if not isinstance(g, PerGroup) and scale.ndim == 0:
            scale = scale.expand(codes.shape[0])
            g = "tensor"
        return kind, codes, scale, g
    raise ValueError(f"the native decode step packs nn.Linear and real/fake QuantLinear layers; got "
                     f"{type(module).__name__}. Run this scheme with --runner lean")


def pack_linears(modules: list[nn.Module]) -> PackedLinear:
    """Pack one linear, or several sharing an input (q|k|v, gate|up) as one concatenated GEMV."""
    parts = [_float_parts(m) for m in modules]
    kinds = {p[0] for p in parts}
    groups = {getattr(p[3], "group_size", 0) for p in parts}
    per_tensor = any(p[3] == "tensor" for p in parts)
    if len(kinds) != 1 or len(groups) != 1:
        raise ValueError(f"cannot merge linears of different schemes ({sorted(kinds)}, groups {sorted(groups)})")
    kind, group = kinds.pop(), groups.pop()
    w = torch.cat([p[1] for p in parts])
    n, k = w.shape
    scale = None
    if kind != "float32":
        s = torch.cat([p[2] for p in parts])  # (N,) or (N, G)
        pad = -n % BLOCK
        if group:
            s = torch.cat([s, s.new_zeros(pad, s.shape[1])]) if pad else s
            scale = s.reshape(-1, BLOCK, s.shape[1]).transpose(1, 2).contiguous()
        else:
            scale = torch.cat([s, s.new_zeros(pad)]).contiguous()
    biases = [getattr(m, "bias", None) for m in modules]
    bias = None
    if any(b is not None for b in biases):
        bias = torch.cat([b.detach().float() if b is not None else torch.zeros(m.weight.shape[0] if hasattr(m, "weight")
                          else m.out_features) for b, m in zip(biases, modules)]).contiguous()
    # the eager INT8 row kernel (_weight_int8pack_mm) sees bf16 activations when K is a multiple of 16
    bf16_io = (2 if per_tensor else 1) if kind == "int8" and not group and k % 16 == 0 else 0
    return PackedLinear(kind, n, k, group, bf16_io, _blocked(w), scale, bias)


# ---- the decoder -------------------------------------------------------------------------------

class NativeDecoder:
    """Batch-1 decoding of ``model`` (HF Llama/Qwen2/Qwen3, float32 or labkit-quantized) with a
    native step. ``prefill(ids)`` → next token (PyTorch, fills the cache); ``step(token)`` → next
    token (one C call); ``logits`` holds the last step's logits ``(vocab,)``.
    """

    def __init__(self, model: Any, max_len: int, threads: int | None = None):
        check_supported(model)
        self.max_len = max_len
        self.lib = load_library()
        self.lean = LeanDecoder(model)
        self.state = self.lean.start(1, max_len)
        cfg = model.config
        layers = self.lean.layers
        if self.state.keys.dtype != torch.float32:
            raise ValueError(f"the native step runs float32 models (with 8-bit linears); this one is {self.state.keys.dtype}")
        attn0 = layers[0].self_attn
        self.packed = {
            "qkv_proj": [pack_linears([l.self_attn.q_proj, l.self_attn.k_proj, l.self_attn.v_proj]) for l in layers],
            "o_proj": [pack_linears([l.self_attn.o_proj]) for l in layers],
            "gate_up": [pack_linears([l.mlp.gate_proj, l.mlp.up_proj]) for l in layers],
            "down": [pack_linears([l.mlp.down_proj]) for l in layers],
            "lm_head": [pack_linears([self.lean.lm_head])],
        }
        h, inter, d = cfg.hidden_size, cfg.intermediate_size, self.lean.head_dim
        qdim, kvdim = self.lean.n_heads * d, self.lean.n_kv * d
        vocab = self.packed["lm_head"][0].n
        buf = {name: torch.zeros(size) for name, size in (
            ("x", h), ("h", h), ("xq", max(h, inter, qdim)), ("qkv", qdim + 2 * kvdim), ("att", qdim),
            ("scores", max_len), ("o", h), ("gu", 2 * inter), ("act", inter), ("logits", vocab))}
        self.buffers = buf
        self.logits = buf["logits"]
        f32 = (lambda t: t.detach().to(torch.float32).contiguous())
        self._keep = {
            "embed": f32(self.lean.embed.weight), "final_norm": f32(self.lean.norm.weight),
            "attn_norm": [f32(l.input_layernorm.weight) for l in layers],
            "mlp_norm": [f32(l.post_attention_layernorm.weight) for l in layers],
            "q_norm": [f32(l.self_attn.q_norm.weight) for l in layers] if self.lean.has_qk_norm else [],
            "k_norm": [f32(l.self_attn.k_norm.weight) for l in layers] if self.lean.has_qk_norm else [],
        }
        ptrs = (lambda ts: (ctypes.c_void_p * max(1, len(ts)))(*[t.data_ptr() for t in ts]))
        structs = {name: (Lin * len(p))(*[x.struct() for x in p]) for name, p in self.packed.items()}
        self._arrays = [structs] + [ptrs(self._keep[k]) for k in ("attn_norm", "mlp_norm", "q_norm", "k_norm")]
        norms = self._arrays[1:]
        eps = layers[0].input_layernorm.variance_epsilon
        scale = getattr(attn0, "scaling", d**-0.5)
        for t in (self.state.cos, self.state.sin, self.state.keys, self.state.values):
            if not t.is_contiguous():
                raise ValueError("the lean state's tensors must be contiguous for the native step")
        self.model = Model(
            len(layers), h, self.lean.n_heads, self.lean.n_kv, d, inter, vocab, max_len, int(self.lean.has_qk_norm),
            max(1, threads or torch.get_num_threads()), eps, scale,
            self._keep["embed"].data_ptr(), self._keep["final_norm"].data_ptr(),
            self.state.cos.data_ptr(), self.state.sin.data_ptr(),
            self.state.keys.data_ptr(), self.state.values.data_ptr(),
            *[buf[k].data_ptr() for k in ("x", "h", "xq", "qkv", "att", "scores", "o", "gu", "act", "logits")],
            *[ctypes.cast(a, ctypes.c_void_p) for a in norms],
            *[ctypes.cast(structs[k], ctypes.c_void_p) for k in ("qkv_proj", "o_proj", "gate_up", "down", "lm_head")],
        )

    def __deepcopy__(self, memo: dict) -> None:
        # kept on its model (native_decoder): a copied model packs its own weights when first run
        return None

    def __reduce__(self):
        return (type(None), ())

    @property
    def bytes_per_token(self) -> int:
        """Weight bytes one step reads (packed linears + the embedding row), KV cache excluded."""
        return sum(p.nbytes for ps in self.packed.values() for p in ps) + self._keep["embed"].shape[1] * 4

    def kv_bytes(self, length: int) -> int:
        """KV-cache bytes one step reads at ``length`` cached positions (keys and values, all layers)."""
        s = self.state.keys
        return 2 * s.shape[0] * s.shape[2] * length * s.shape[4] * s.element_size()

    @property
    def length(self) -> int:
        return self.state.length

    def set_threads(self, threads: int) -> None:
        self.model.nthreads = max(1, int(threads))

    def reset(self) -> None:
        self.state.length = 0

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor) -> int:
        """Feed the prompt ``ids: (1, T)``: the decoder layers in PyTorch (library GEMMs over the T
        tokens), then the lm_head of the last position through the native GEMV, as every decode step
        does; return the greedy next token."""
        if ids.dim() != 2 or ids.shape[0] != 1:
            raise ValueError(f"the native decoder runs batch 1; got input_ids of shape {tuple(ids.shape)}")
        h = self.lean.hidden(ids, self.state)[0].to(torch.float32).contiguous()
        # the packed lm_head through the step's own linear() (bf16 activations for int8 rows, threads)
        self.lib.lib.labkit_linear(ctypes.addressof(self.model), self.model.lm_head, h.data_ptr(), self.logits.data_ptr())
        return int(self.logits.argmax())

    def step(self, token: int) -> int:
        """Feed one token at the next position (one C call); return the greedy next token."""
        pos = self.state.length
        if pos >= self.state.keys.shape[3]:
            raise ValueError(f"the cache holds {self.state.keys.shape[3]} positions; no room for position {pos}")
        nxt = self.lib.lib.labkit_decode_step(ctypes.addressof(self.model), int(token), pos)
        self.state.length = pos + 1
        return int(nxt)


def native_decoder(model: Any, max_len: int, threads: int | None = None) -> NativeDecoder:
    """The model's ``NativeDecoder`` (packed once, kept on the model while it lives) with room for
    ``max_len`` positions; rebuilt only if a longer one is asked for."""
    dec = getattr(model, "_labkit_native_decoder", None)
    if dec is None or dec.max_len < max_len:
        dec = None  # free the old packing before making the new one
        model._labkit_native_decoder = None
        dec = NativeDecoder(model, max_len, threads)
        model._labkit_native_decoder = dec
    dec.set_threads(threads or torch.get_num_threads())
    dec.reset()
    return dec
