"""Answer records: what a hidden check shows in the student's kernel so the grader can re-check it.

Under autograde every graded check of the case engine (``check``, ``check_torch``, ``check_bench``)
displays the raw outputs of the student's function on each seeded case as ``.npy`` bytes in an
output of type ``application/vnd.labkit.answers+json``. A torch tensor is stored as the ``.npy`` of
``tensor.numpy()`` with its dtype noted; dtypes numpy lacks (bfloat16, float8) travel as their
bits (an integer view of the same width) and are viewed back as the noted dtype on decoding. The grader's process (``labkit.course.verify``) decodes
them — never unpickling: a record is data, not code — and compares them with labkit's reference
again, outside the kernel. This module is the kernel's half; it only encodes and decodes.
"""

from __future__ import annotations

import ast
import base64
import copy
import io
from dataclasses import dataclass

import numpy as np

MIME = "application/vnd.labkit.answers+json"


@dataclass(frozen=True)
class Unsupported:
    """A recorded output that was not a numpy array or number (e.g. a torch tensor, a list)."""

    type_name: str


def encode_value(value) -> dict:
    """One output value → JSON-safe dict (numpy arrays and scalars as .npy bytes)."""
    if isinstance(value, bool):
        return {"kind": "other", "type": "bool"}
    if isinstance(value, (int, float)) and type(value) in (int, float):
        return {"kind": "py", "type": type(value).__name__, "value": repr(value)}
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            return {"kind": "other", "type": "object array"}
        buf = io.BytesIO()
        np.save(buf, np.array(arr, order="C", copy=True).view(np.ndarray), allow_pickle=False)
        kind = "array" if isinstance(value, np.ndarray) else "scalar"
        return {"kind": kind, "npy": base64.b64encode(buf.getvalue()).decode("ascii")}
    tensor = _torch_tensor(value)
    if tensor is not None:
        return _encode_tensor(tensor)
    return {"kind": "other", "type": type(value).__module__ + "." + type(value).__name__}


def _npy(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, np.array(arr, order="C", copy=True), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _torch_tensor(value):
    try:
        import torch
    except ImportError:  # pragma: no cover
        return None
    return value.detach().cpu() if isinstance(value, torch.Tensor) else None


_BITS = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}


def _encode_tensor(t) -> dict:
    import torch

    dtype = str(t.dtype).removeprefix("torch.")
    if t.is_complex() or t.layout != torch.strided or t.is_quantized:
        return {"kind": "other", "type": f"torch.Tensor ({dtype}, {t.layout})"}
    t = t.contiguous()
    try:
        arr, bits = t.numpy(), False
    except TypeError:  # bfloat16, float8_*: no numpy dtype — keep the bits
        arr, bits = t.view(getattr(torch, _BITS[t.element_size()])).numpy(), True
    return {"kind": "torch", "dtype": dtype, "bits": bits, "npy": _npy(arr)}


def _decode_tensor(data: dict):
    import torch

    arr = np.load(io.BytesIO(base64.b64decode(data["npy"])), allow_pickle=False)
    dtype = getattr(torch, str(data.get("dtype", "")), None)
    if not isinstance(dtype, torch.dtype):
        return Unsupported(f"torch.Tensor of unknown dtype {data.get('dtype')!r}")
    t = torch.from_numpy(np.array(arr))
    return t.view(dtype) if data.get("bits") else t.to(dtype)


def decode_value(data: dict):
    """Inverse of ``encode_value``; never executes anything from the record."""
    kind = data.get("kind")
    if kind == "py":
        return {"int": int, "float": float}[data["type"]](data["value"]) if data.get("type") in ("int", "float") \
            else Unsupported(str(data.get("type")))
    if kind in ("array", "scalar"):
        arr = np.load(io.BytesIO(base64.b64decode(data["npy"])), allow_pickle=False)
        return arr if kind == "array" else arr[()]
    if kind == "torch":
        return _decode_tensor(data)
    return Unsupported(str(data.get("type", "unknown")))


def answer_record(name: str, seed: int, points: float, outputs: list) -> dict:
    """The record a hidden check displays: ``outputs`` has one entry per case, each the tuple of
    the student's output values, or ``None`` when the call failed or returned the wrong structure."""
    cases = []
    for out in outputs:
        cases.append(None if out is None else [encode_value(v) for v in out])
    return {"exercise": name, "seed": int(seed), "points": float(points), "cases": cases}


def show_record(record: dict) -> None:
    """Display the record in the running kernel (no text fallback: nothing shows in the notebook)."""
    from IPython.display import display

    display({MIME: record}, raw=True)
