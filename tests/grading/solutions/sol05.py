def quantize_per_token(X):
    """INT8 absmax with one scale per token (row) of X: (tokens, dim) float32.

    Returns (q, scales): q int8 (tokens, dim) in [−127, 127]; scales float32 (tokens,),
    scales[t] = max|X[t, :]| / 127 (1.0 for an all-zero token).
    Example: X = [[2.54, −1.0], [0, 0]] → scales [0.02, 1.0], q [[127, −50], [0, 0]].
    """
    ### BEGIN SOLUTION
    amax = np.max(np.abs(X), axis=1)
    scales = np.where(amax > 0, amax / 127, 1.0).astype(np.float32)
    q = np.clip(np.round(X / scales[:, None]), -127, 127).astype(np.int8)
    return q, scales
    ### END SOLUTION
    raise NotImplementedError("Task 5.3: quantize_per_token — one scale per row of X")


def w8a8_simulate(X, W):
    """Simulated W8A8 output of Y = X W → float64 (tokens, out).

    X: (tokens, dim) float32 quantized per token (Task 5.3); W: (dim, out) float32 quantized per
    output column (the same rule applied to Wᵀ: one scale per column of W). Dequantize both in
    float32, then multiply in float64.
    Example: X = [[2.54, −1.0]], W = [[0.5], [0.25]] → [[1.01803]] (float: 1.02).
    """
    ### BEGIN SOLUTION
    qx, sx = quantize_per_token(X)
    qw, sw = quantize_per_token(W.T)
    X_hat = qx.astype(np.float32) * sx[:, None]
    W_hat = (qw.astype(np.float32) * sw[:, None]).T
    return X_hat.astype(np.float64) @ W_hat.astype(np.float64)
    ### END SOLUTION
    raise NotImplementedError("Task 5.4: w8a8_simulate — X per token, W per output column, then the product")


def w8a8_int_linear(qx, sx, qw, sw):
    """The integer W8A8 linear: int8 × int8 → int32 sums, then one rescale per output element.

    qx: (tokens, dim) int8, sx: (tokens,) float32; qw: (dim, out) int8, sw: (out,) float32.
    Returns (acc, y): acc int32 (tokens, out), the exact sums Σ_k qx[t, k] · qw[k, o];
    y float32 (tokens, out), acc converted to float32 and multiplied by sx[t] and then by sw[o].
    Careful: numpy multiplies int8 arrays in int8.
    Example: qx [[127, −50]], sx [0.02], qw [[127], [64]], sw [0.5/127] → acc [[12929]], y [[1.01803]].
    """
    ### BEGIN SOLUTION
    acc = qx.astype(np.int32) @ qw.astype(np.int32)
    y = acc.astype(np.float32) * sx[:, None] * sw[None, :]
    return acc, y
    ### END SOLUTION
    raise NotImplementedError("Task 5.5: w8a8_int_linear — int32 accumulation, then the two scales")


def smoothquant_best_alpha(X, W, alphas):
    """Grid search for SmoothQuant's migration strength on one layer.

    X: (tokens, dim), W: (dim, out) float32; alphas: 1-D array of candidates in [0, 1].
    For each α: s = compute_smooth_factor(X, W, α), smooth with apply_smoothing, and measure
    error = mean((X W − w8a8_simulate(X/s, s·W))²), with X W computed in float64.
    Returns (best_alpha, errors): the α with the smallest error (the first one on ties) as a
    Python float, and errors as a float64 array (len(alphas),). You may call your Tasks 5.1, 5.2
    and 5.4 here.
    """
    ### BEGIN SOLUTION
    Y = X.astype(np.float64) @ W.astype(np.float64)
    errors = np.empty(len(alphas))
    for i, alpha in enumerate(alphas):
        s = compute_smooth_factor(X, W, float(alpha))
        X_s, W_s = apply_smoothing(X, W, s)
        errors[i] = np.mean((Y - w8a8_simulate(X_s, W_s)) ** 2)
    return float(alphas[int(np.argmin(errors))]), errors
    ### END SOLUTION
    raise NotImplementedError("Task 5.6: smoothquant_best_alpha — W8A8 error at every alpha, keep the best")


def llm_int8_matmul(X, W, threshold=6.0):
    """LLM.int8()'s decomposition of Y = X W: outlier columns in float, the rest in W8A8.

    X: (tokens, dim), W: (dim, out) float32. Outlier columns O: every j with max_t |X[t, j]| >
    threshold. Y = X[:, O] @ W[O, :] in float64 + w8a8_simulate(X[:, rest], W[rest, :]) for the
    other columns (their per-token scales now ignore the outliers). If no column is an outlier,
    Y is the plain W8A8 simulation.
    Returns (Y float64 (tokens, out), outlier_cols: sorted integer array of the columns in O).
    """
    ### BEGIN SOLUTION
    cols = np.flatnonzero(np.max(np.abs(X), axis=0) > threshold)
    rest = np.setdiff1d(np.arange(X.shape[1]), cols)
    Y = X[:, cols].astype(np.float64) @ W[cols, :].astype(np.float64)
    if rest.size:
        Y = Y + w8a8_simulate(X[:, rest], W[rest, :])
    return Y, cols
    ### END SOLUTION
    raise NotImplementedError("Task 5.7: llm_int8_matmul — find the outlier columns, split the product")
