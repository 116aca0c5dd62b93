def quantize_column(col, scales, n_bits=8):
    """Integer codes of one column with the rows' own scales.

    col: (out,) float64, one column of W; scales: (out,) float64, one per output row (chosen
    once from the original W); n_bits 2..8, qmax = 2**(n_bits − 1) − 1.
    Returns int8 codes (out,): col / scales rounded to the nearest integer (np.round: halves to
    even) and clipped to [−qmax, qmax] — error feedback can push a value beyond the grid.
    Example (3 bits, qmax 3): col [0.7, −0.2, 0.04, 0.5], scales [0.7/3, 0.1, 0.1, 0.1] → [3, −2, 0, 3].
    """
    ### BEGIN SOLUTION
    qmax = 2 ** (n_bits - 1) - 1
    return np.clip(np.round(col / scales), -qmax, qmax).astype(np.int8)
    ### END SOLUTION
    raise NotImplementedError("Task 4.1: quantize_column — divide by the row scales, round, clip, int8")


def naive_quantize(W, n_bits=8):
    """Round-to-nearest with per-row scales: W: (out, in) float64 → Ŵ (out, in) float64.

    scales[i] = max|W[i, :]| / qmax (1.0 for an all-zero row) — the same scales GPTQ uses —
    then every column through quantize_column, dequantized (codes · scales). W is not changed.
    """
    ### BEGIN SOLUTION
    qmax = 2 ** (n_bits - 1) - 1
    amax = np.max(np.abs(W), axis=1)
    scales = np.where(amax > 0, amax / qmax, 1.0)
    W_hat = np.empty_like(W)
    for j in range(W.shape[1]):
        W_hat[:, j] = quantize_column(W[:, j], scales, n_bits) * scales
    return W_hat
    ### END SOLUTION
    raise NotImplementedError("Task 4.2: naive_quantize — per-row scales, then every column on its own")


def gptq_simplified(W, n_bits=8):
    """Column by column with uniform error feedback: W: (out, in) float64 → Ŵ (out, in).

    Per-row scales from the original W (as in Task 4.2). On a copy of W, for j = 0 .. in−1:
    Ŵ[:, j] = dequantized quantize_column of the current column j; its error W[:, j] − Ŵ[:, j]
    is shared equally by the in − j − 1 columns after it (added to each). The last column's
    error has nowhere to go. W itself is not changed.
    """
    ### BEGIN SOLUTION
    qmax = 2 ** (n_bits - 1) - 1
    amax = np.max(np.abs(W), axis=1)
    scales = np.where(amax > 0, amax / qmax, 1.0)
    W = W.copy()
    n = W.shape[1]
    W_hat = np.empty_like(W)
    for j in range(n):
        W_hat[:, j] = quantize_column(W[:, j], scales, n_bits) * scales
        if j + 1 < n:
            W[:, j + 1:] += (W[:, j] - W_hat[:, j])[:, None] / (n - j - 1)
    return W_hat
    ### END SOLUTION
    raise NotImplementedError("Task 4.3: gptq_simplified — quantize column j, spread its error over columns j+1..")


def inverse_hessian_factor(H, percdamp=0.01):
    """Upper-triangular U with Uᵀ U = (H + λ I)⁻¹ — the factor GPTQ reads its updates from.

    H: (in, in) float64, symmetric, H = 2 XᵀX. First, every dead input (H[j, j] == 0: the feature
    is always 0) gets H[j, j] = 1. Then λ = percdamp · mean(diag H) is added to the diagonal.
    Work on a copy. numpy's Cholesky returns the *lower* factor L (A = L Lᵀ).
    Returns U (in, in) float64, zero below the diagonal, positive diagonal.
    Example: H = [[4, 2], [2, 3]], percdamp 0 → H⁻¹ = [[0.375, −0.25], [−0.25, 0.5]] and
    U = [[0.6124, −0.4082], [0, 0.5774]] (check: UᵀU = H⁻¹).
    """
    ### BEGIN SOLUTION
    H = np.array(H, dtype=np.float64)
    d = np.arange(H.shape[0])
    dead = H[d, d] == 0
    H[d[dead], d[dead]] = 1.0
    H[d, d] += percdamp * np.mean(H[d, d])
    return np.linalg.cholesky(np.linalg.inv(H)).T
    ### END SOLUTION
    raise NotImplementedError("Task 4.4: inverse_hessian_factor — dead inputs, dampening, inverse, upper Cholesky")


def gptq_block(W_block, U_block, scales, n_bits=4):
    """GPTQ's inner loop over one block of B columns.

    W_block: (out, B) float64 — the block's columns as they are now (after earlier updates);
    U_block: (B, B) — the block's square of U (upper-triangular); scales: (out,) row scales.
    For i = 0 .. B−1, in order, on a copy of W_block:
      codes[:, i] = quantize_column(current column i)              (int8)
      E[:, i]     = (current column i − codes[:, i] · scales) / U_block[i, i]
      every later column k > i of the block moves by −E[:, i] · U_block[i, k]
    Returns (codes int8 (out, B), E float64 (out, B)). W_block is not changed.
    Example (2 bits): W_block [[0.4, 0.4, 1.0]] with twin inputs 1 and 2 (the notebook prints
    U_block), scales [1.0] → codes [[0, 1, 1]]: column 1 took over column 0's rounding error.
    """
    ### BEGIN SOLUTION
    W = W_block.copy()
    B = W.shape[1]
    codes = np.empty(W.shape, np.int8)
    E = np.empty_like(W)
    for i in range(B):
        codes[:, i] = quantize_column(W[:, i], scales, n_bits)
        E[:, i] = (W[:, i] - codes[:, i] * scales) / U_block[i, i]
        W[:, i + 1:] -= np.outer(E[:, i], U_block[i, i + 1:])
    return codes, E
    ### END SOLUTION
    raise NotImplementedError("Task 4.5: gptq_block — quantize column i, scaled error, update the columns after it")
