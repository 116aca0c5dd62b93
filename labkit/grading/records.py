"""Answer records: what a hidden check shows in the student's kernel so the grader can re-check it.

Under autograde a hidden ``check(name, fn, seed=S, points=P)`` displays the raw outputs of the
student's function on each seeded case as ``.npy`` bytes in an output of type
``application/vnd.labkit.answers+json``. The grader's process (``labkit.course.verify``) decodes
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
    return {"kind": "other", "type": type(value).__module__ + "." + type(value).__name__}


def decode_value(data: dict):
    """Inverse of ``encode_value``; never executes anything from the record."""
    kind = data.get("kind")
    if kind == "py":
        return {"int": int, "float": float}[data["type"]](data["value"]) if data.get("type") in ("int", "float") \
            else Unsupported(str(data.get("type")))
    if kind in ("array", "scalar"):
        arr = np.load(io.BytesIO(base64.b64decode(data["npy"])), allow_pickle=False)
        return arr if kind == "array" else arr[()]
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
