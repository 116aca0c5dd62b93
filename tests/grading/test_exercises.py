"""The exercises of notebooks 02–05 added for issue 10: independent solutions score full marks,
typical mistakes lose exactly their part, and calling labkit's reference scores 0.

The solutions are the source notebooks' solution cells, run in-process (``tests/course`` runs the
notebooks in a kernel; this is the fast, focused counterpart).
"""

from __future__ import annotations

import re
from pathlib import Path

import ml_dtypes
import nbformat
import numpy as np
import pytest

import labkit.quant as Q
from labkit.grading import EXERCISES, check

SOURCE = Path(__file__).parents[2] / "autograde" / "source" / "hw4"
NB = {
    "02_zero_point": ["zeropoint_quantize_storable", "perchannel_zeropoint_quantize", "perchannel_zeropoint_dequantize"],
    "03_granularity": ["pergroup_quantize", "pergroup_dequantize", "pergroup_fake_quantize_fp8"],
    "04_gptq": ["quantize_column", "naive_quantize", "gptq_simplified", "inverse_hessian_factor", "gptq_block"],
    "05_smoothquant": ["compute_smooth_factor", "apply_smoothing", "quantize_per_token", "w8a8_simulate",
                       "w8a8_int_linear", "smoothquant_best_alpha", "llm_int8_matmul"],
}
CASES = [(stem, name) for stem, names in NB.items() for name in names]


def _namespace() -> dict:
    """The source notebooks' solution cells of these exercises, executed in one namespace (the
    kernel-free counterpart of running the notebooks; delimiter lines and the stub's raise removed)."""
    ns = {"np": np, "ml_dtypes": ml_dtypes}
    for stem, names in NB.items():
        nb = nbformat.read(SOURCE / f"{stem}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") in names:
                src = re.sub(r"\n\s*### (BEGIN|END) SOLUTION", "", cell.source)
                src = re.sub(r"\n\s*raise NotImplementedError\(.*\)", "", src)
                exec(compile(src, f"<{stem}>", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def solved():
    return _namespace()


@pytest.mark.parametrize("stem,name", CASES)
@pytest.mark.parametrize("seed", [0, 12345])
def test_solution_scores_full(solved, stem, name, seed):
    assert check(name, solved[name], seed=seed, points=3, plot=False) == 3.0


@pytest.mark.parametrize("stem,name", CASES)
def test_calling_the_reference_scores_zero(stem, name):
    ref = EXERCISES[name].reference
    ns = {"ref": ref}
    exec(f"def {name}(*args, **kwargs):\n    return ref(*args, **kwargs)\n", ns)
    assert check(name, ns[name], seed=3, points=2, plot=False) == 0.0


# (exercise, a typical mistake written as the student would, points, the score it must get): each
# mistake loses exactly the parts it gets wrong
MISTAKES = [
    pytest.param("zeropoint_quantize_storable", 3, 0.0, (
        # Task 2.1's rule on one-sided data: z = round(−min/scale) is not a uint8 code
        "def zeropoint_quantize_storable(x):\n"
        "    lo, hi = np.min(x), np.max(x)\n"
        "    scale = (hi - lo) / 255 if hi > lo else np.float32(1.0)\n"
        "    zp = int(np.round(-lo / scale))\n"
        "    return np.clip(np.round(x / scale) + zp, 0, 255).astype(np.uint8), scale, zp\n"),
        id="zero point outside the codes"),
    pytest.param("pergroup_quantize", 3, 0.0, (
        # the last, shorter group merged into a full-size one: scales of the wrong shape on most cases
        "def pergroup_quantize(W, group_size):\n"
        "    out, k = W.shape\n"
        "    n = max(1, k // group_size)\n"
        "    s = np.stack([np.max(np.abs(W[:, i * group_size:(i + 1) * group_size if i < n - 1 else k]), axis=1)\n"
        "                  for i in range(n)], 1) / 127\n"
        "    s = np.where(s > 0, s, 1.0).astype(np.float32)\n"
        "    e = np.concatenate([np.repeat(s[:, :-1], group_size, 1), np.repeat(s[:, -1:], k - (n - 1) * group_size, 1)], 1)\n"
        "    return np.clip(np.round(W / e), -127, 127).astype(np.int8), s\n"),
        id="per-group: short last group merged"),
    pytest.param("pergroup_quantize", 3, 1.0, (    # the scales' share
        "_right = pergroup_quantize\n"
        "def pergroup_quantize(W, group_size):\n"
        "    q, s = _right(W, group_size)\n"
        "    return np.trunc(q * 0.999).astype(np.int8), s\n"),
        id="per-group: truncated codes"),
    pytest.param("pergroup_fake_quantize_fp8", 2, 0.0, (
        "def pergroup_fake_quantize_fp8(W, group_size):\n"
        "    q, s = pergroup_quantize(W, group_size)\n"
        "    return pergroup_dequantize(q, s, group_size)\n"),
        id="fp8 on an int8 grid"),
    pytest.param("w8a8_int_linear", 3, 0.0, (
        "def w8a8_int_linear(qx, sx, qw, sw):\n"
        "    acc = qx @ qw\n"
        "    return acc, acc.astype(np.float32) * sx[:, None] * sw[None, :]\n"),
        id="w8a8: int8 accumulation wraps"),
    pytest.param("w8a8_int_linear", 3, 1.0, (    # y right, acc not int32
        "def w8a8_int_linear(qx, sx, qw, sw):\n"
        "    acc = qx.astype(np.float32) @ qw.astype(np.float32)\n"
        "    return acc, acc * sx[:, None] * sw[None, :]\n"),
        id="w8a8: float32 accumulator"),
    pytest.param("gptq_block", 4, 0.0, (
        # without the error update, a block is round-to-nearest: the codes fail
        "def gptq_block(W_block, U_block, scales, n_bits=4):\n"
        "    codes = np.stack([quantize_column(W_block[:, i], scales, n_bits) for i in range(W_block.shape[1])], 1)\n"
        "    E = (W_block - codes * scales[:, None]) / np.diag(U_block)[None, :]\n"
        "    return codes, E\n"),
        id="gptq block without the update"),
    pytest.param("smoothquant_best_alpha", 3, 1.0, (    # errors right, alpha wrong
        "_right = smoothquant_best_alpha\n"
        "def smoothquant_best_alpha(X, W, alphas):\n"
        "    a, errors = _right(X, W, alphas)\n"
        "    return float(alphas[int(np.argmax(errors))]), errors\n"),
        id="best alpha by argmax"),
]


@pytest.mark.parametrize("name,points,expected,src", MISTAKES)
def test_typical_mistake_loses_its_parts(solved, name, points, expected, src):
    ns = dict(solved)
    exec(src, ns)
    assert check(name, ns[name], points=points, plot=False) == expected


def test_gptq_pieces_give_labkits_full_gptq_codes(solved):
    """The notebook's lazy-block skeleton with the student's pieces = labkit's full GPTQ (torch)."""
    import torch

    from labkit.quant import PerRow, gptq_quantize
    rng = np.random.default_rng(5)
    W = rng.standard_normal((32, 96)) * 0.1
    X = 1.0 + 0.5 * rng.standard_normal((256, 1)) + 0.3 * rng.standard_normal((256, 96))
    codes, _ = Q.gptq_lazy(W, 2 * X.T @ X, 4, 32, block=solved["gptq_block"])
    full = gptq_quantize(torch.tensor(W), torch.tensor(X), n_bits=4, granularity=PerRow(), block_size=32)
    np.testing.assert_array_equal(codes, full.codes.numpy())
