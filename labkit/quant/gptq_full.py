"""Full GPTQ (Frantar et al., 2022): round one column at a time, let the inverse Hessian fix the rest.

The problem: find codes Ŵ for a linear layer ``W: (out, in)`` that keep its *outputs* on real
inputs, ``min ‖X Wᵀ − X Ŵᵀ‖²`` for calibration inputs ``X: (tokens, in)``. Every output row is an
independent least-squares problem with the same Hessian ``H = 2 XᵀX: (in, in)``.

How it works (Optimal Brain Quantization, made fast):

1. Column j of W is rounded to the grid; its error ``r = w_j − ŵ_j`` (one value per row) is
   compensated *exactly* by moving the not-yet-quantized columns k > j by
   ``−r · [H⁻¹]_jk / [H⁻¹]_jj``. After column j is fixed, the inverse Hessian of the remaining
   columns is a Schur complement; those successive rows are exactly the rows of the upper
   Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU), so one Cholesky replaces all the updates:
   ``e = r / U_jj`` and ``W[:, k] −= e · U_jk``.
2. Inputs that are correlated let the later columns absorb the error: that is why GPTQ beats
   round-to-nearest by a wide margin at 3–4 bits and by nothing on uncorrelated inputs.
3. Lazy batches: the rank-1 updates are applied only inside a block of 128 columns; the columns
   after the block get all 128 at once as one matrix product, which is what makes it fast.
4. Dampening: ``H += 0.01 · mean(diag H) · I`` keeps the Cholesky stable when X is rank deficient
   (fewer tokens than features, duplicated features). Dead inputs (``H_jj = 0``: the feature is
   always 0) get ``H_jj = 1`` and their weights are set to 0 — they never affect the output.

Worked number (2 bits: codes −1, 0, 1): inputs x₁ = x₂ (perfectly correlated) and an independent
x₃, one row w = [0.4, 0.4, 1.0], so the per-row scale is 1.0. Round-to-nearest gives [0, 0, 1]:
the output is off by 0.8·x₁. GPTQ rounds 0.4 → 0, moves that 0.4 onto column 2 (H⁻¹ couples the
two twins), and 0.8 rounds to 1: Ŵ = [0, 1, 1], off by only 0.2·x₁ (a test checks this case).

Scales: ``PerRow()`` picks one scale per output row from the *original* W before any update (the
choice of the GPTQ reference code); ``PerGroup(g)`` picks a group's scales when its first column
is reached, from the group's *current*, error-updated columns. To make "current" exact, the
block size is rounded to a multiple of g (g itself when g > 128), so a group never straddles a
block. K not divisible by g → a shorter last group, as in ``granularity.py``. Symmetric integer
grids of 2..8 bits (``symmetric_int``). Not implemented: activation reordering (act-order) and
static groups. torchao 0.18 has the same algorithm as a prototype (``torchao.prototype.gptq``:
``GPTQConfig`` observe → convert over a whole model, Int4/Int8 weight-only targets, 256-column
blocks) but it asserts CUDA; this is the bare math on one weight, on CPU, returning codes and
scales that ``labkit.quant.dequantize`` understands.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .backend import check_float_input
from .formats import Format, symmetric_int
from .granularity import Granularity, PerGroup, PerRow, scale_shape
from .primitives import QParams


@dataclass(frozen=True)
class GPTQResult:
    """Result of ``gptq_quantize``.

    ``weight``: dequantized Ŵ ``(out, in)`` in the input weight's dtype; ``codes``: int8
    ``(out, in)``; ``scale``: float32 ``(out,)`` per row or ``(out, ceil(in / g))`` per group;
    ``loss``: GPTQ's running estimate ``Σ_j ‖r_j‖² / (2 U_jj²)``, which equals
    ``½ ΔWᵀ H_damped ΔW`` summed over rows (ΔW = W − Ŵ with dead columns zeroed), i.e. about
    ``‖X(W − Ŵ)ᵀ‖²`` plus the small dampening term.
    """

    weight: torch.Tensor
    codes: torch.Tensor
    scale: torch.Tensor
    fmt: Format
    granularity: Granularity
    loss: float

    @property
    def qparams(self) -> QParams:
        """The same quantization as ``QParams``, so ``dequantize(codes, qparams)`` gives ``weight``."""
        return QParams(self.fmt, self.granularity, self.scale, None, tuple(self.codes.shape))


def hessian(X: torch.Tensor) -> torch.Tensor:
    """``H = 2 XᵀX`` (``(in, in)``, float32; float64 for float64 X) of calibration inputs ``X: (..., in)``.

    Batches add up: the Hessian of several calibration batches is the sum of theirs.
    """
    check_float_input(X, "X", min_ndim=2)
    x = X.detach().reshape(-1, X.shape[-1])
    x = x if x.dtype == torch.float64 else x.to(torch.float32)
    return 2.0 * (x.T @ x)


@contextmanager
def _single_thread():
    """Run the enclosed torch ops on one thread, then restore the caller's thread count."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _absmax_scale(w: torch.Tensor, qmax: int) -> torch.Tensor:
    """Symmetric scale over the last axis; 1.0 for an all-zero block (as ``choose_qparams``)."""
    amax = w.abs().amax(dim=-1)
    return torch.where(amax > 0, amax / qmax, torch.ones_like(amax))


def _upper_triangular_inverse(R: torch.Tensor) -> torch.Tensor:
    """R⁻¹ for upper-triangular R by halves, [[A, B], [0, C]]⁻¹ = [[A⁻¹, −A⁻¹BC⁻¹], [0, C⁻¹]]:
    about n³/3 flops in matrix products, a third of a triangular solve against the identity."""
    n = R.shape[0]
    if n <= 256:
        return torch.linalg.solve_triangular(R, torch.eye(n, dtype=R.dtype), upper=True)
    h = n // 2
    Ai = _upper_triangular_inverse(R[:h, :h])
    Ci = _upper_triangular_inverse(R[h:, h:])
    out = torch.zeros_like(R)
    out[:h, :h], out[h:, h:] = Ai, Ci
    out[:h, h:] = -(Ai @ R[:h, h:]) @ Ci
    return out


def _inverse_cholesky(H: torch.Tensor, percdamp: float) -> torch.Tensor:
    """Upper Cholesky factor U of (H + damp·I)⁻¹, so that (H + damp·I)⁻¹ = UᵀU.

    Without forming H⁻¹ (``cholesky_inverse`` is slow on CPU): the Cholesky factor of H with its
    index order reversed is an upper-triangular R with H = R Rᵀ, so H⁻¹ = (R⁻¹)ᵀ R⁻¹ and, by the
    uniqueness of Cholesky factors with a positive diagonal, U = R⁻¹.
    """
    n = H.shape[0]
    damp = percdamp * torch.mean(torch.diag(H))
    Hd = H + damp * torch.eye(n, dtype=H.dtype)
    L, info = torch.linalg.cholesky_ex(Hd.flip(0, 1))
    if int(info) != 0:
        raise ValueError(
            "the damped Hessian is not positive definite (its Cholesky factorization failed); "
            f"use more calibration tokens or a larger percdamp than {percdamp}"
        )
    return _upper_triangular_inverse(L.flip(0, 1).contiguous())


def gptq_quantize_hessian(
    weight: torch.Tensor,
    H: torch.Tensor,
    n_bits: int = 4,
    granularity: Granularity = PerRow(),
    block_size: int = 128,
    percdamp: float = 0.01,
) -> GPTQResult:
    """GPTQ of ``weight: (out, in)`` given the Hessian ``H: (in, in)`` (see ``hessian``)."""
    fmt = symmetric_int(n_bits)
    qmax = int(fmt.qmax)
    check_float_input(weight, "weight")
    check_float_input(H, "H")
    if weight.ndim != 2:
        raise ValueError(f"weight must be (out, in) like an nn.Linear weight, got shape {tuple(weight.shape)}")
    out_f, in_f = weight.shape
    if tuple(H.shape) != (in_f, in_f):
        raise ValueError(f"H must be (in, in) = ({in_f}, {in_f}) for weight {tuple(weight.shape)}, got {tuple(H.shape)}")
    if not isinstance(granularity, (PerRow, PerGroup)):
        raise TypeError(f"GPTQ quantizes weights PerRow() or PerGroup(g), got {granularity!r}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size <= 0:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if not 0.0 <= percdamp < 1.0:
        raise ValueError(f"percdamp is a fraction of mean(diag H), from 0 to 1; got {percdamp!r}")

    # float32 is plenty (the GPTQ reference code uses it); float64 in → float64 arithmetic (tests)
    work = torch.float64 if weight.dtype == torch.float64 else torch.float32
    H = H.detach().to(work, copy=True)
    # the algorithm works on rows of Wᵀ: a column of W becomes a contiguous row
    Wt = weight.detach().to(work).T.contiguous()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    Wt[dead] = 0.0
    U = _inverse_cholesky(H, percdamp)

    group = granularity.group_size if isinstance(granularity, PerGroup) else None
    if group is not None:  # a group must fit inside one block so its scale sees current values
        block_size = group * max(1, block_size // group)
        scale = torch.empty(scale_shape((out_f, in_f), granularity), dtype=work)
    else:
        scale = _absmax_scale(Wt.T, qmax)
    codes_t = torch.empty((in_f, out_f), dtype=torch.int8)
    Qt = torch.empty_like(Wt)
    loss = torch.zeros((), dtype=torch.float64)
    s = scale

    for i1 in range(0, in_f, block_size):
        i2 = min(i1 + block_size, in_f)
        Wb = Wt[i1:i2].clone()
        Eb = torch.empty_like(Wb)
        Ub = U[i1:i2, i1:i2]
        # the column loop is thousands of small ops: on a shared machine, a second OpenMP
        # thread that is not scheduled makes each of them wait (measured 10x slower under load)
        with _single_thread():
            for i in range(i2 - i1):
                j = i1 + i
                if group is not None and j % group == 0:
                    s = _absmax_scale(Wb[i : i + group].T, qmax)
                    scale[:, j // group] = s
                w = Wb[i]
                q = torch.clamp(torch.round(w / s), -qmax, qmax)
                codes_t[j] = q
                Qt[j] = q * s
                Eb[i] = (w - Qt[j]) / Ub[i, i]
                # exact OBS compensation of the columns left in this block (a rank-1 update)
                Wb[i + 1 :].addr_(Ub[i, i + 1 :], Eb[i], alpha=-1)
        loss += (Eb.double() ** 2).sum() / 2
        # lazy batch: the columns after the block receive the block's updates in one product
        Wt[i2:].sub_(U[i1:i2, i2:].T @ Eb)

    return GPTQResult(
        weight=Qt.T.contiguous().to(weight.dtype),
        codes=codes_t.T.contiguous(),
        scale=scale.to(torch.float32),
        fmt=fmt,
        granularity=granularity,
        loss=float(loss),
    )


def gptq_quantize(
    weight: torch.Tensor,
    X: torch.Tensor,
    n_bits: int = 4,
    granularity: Granularity = PerRow(),
    block_size: int = 128,
    percdamp: float = 0.01,
) -> GPTQResult:
    """GPTQ of ``weight: (out, in)`` calibrated on inputs ``X: (tokens, in)`` (or ``(..., in)``).

    ``n_bits`` 2..8 (symmetric grid ±(2^(n_bits−1) − 1)); ``granularity`` ``PerRow()`` or
    ``PerGroup(g)``; ``block_size`` columns per lazy batch; ``percdamp`` dampening as a fraction
    of mean(diag H). Neither ``weight`` nor ``X`` is modified.
    """
    check_float_input(weight, "weight")
    check_float_input(X, "X", min_ndim=2)
    if weight.ndim != 2 or X.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"X: (tokens, in) must have in = weight's in: weight is (out, in) = {tuple(weight.shape)}, "
            f"X is {tuple(X.shape)} (is the weight transposed?)"
        )
    return gptq_quantize_hessian(weight, hessian(X), n_bits, granularity, block_size, percdamp)
