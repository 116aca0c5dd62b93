def pergroup_quantize(W, group_size):
    """INT8 absmax with one scale per row and per group of `group_size` consecutive columns.

    W: (out, in) float32; group_size g ≥ 1. Groups run along `in`: columns 0..g−1, g..2g−1, …;
    when g does not divide `in` the last group is shorter (it keeps its own scale).
    Returns (q, scales): q int8 (out, in) in [−127, 127]; scales float32 (out, ceil(in / g)),
    scales[i, k] = max|W[i, group k]| / 127, 1.0 for an all-zero group.
    Example: W = [[1.27, −0.5, 0.04, 0.01, 3.0]], g = 2 → scales [[0.01, 0.04/127, 3/127]],
    q = [[127, −50, 127, 32, 127]].
    """
    ### BEGIN SOLUTION
    out, k = W.shape
    n_groups = -(-k // group_size)
    scales = np.empty((out, n_groups), np.float32)
    q = np.empty((out, k), np.int8)
    for g in range(n_groups):
        block = W[:, g * group_size:(g + 1) * group_size]
        amax = np.max(np.abs(block), axis=1)
        s = np.where(amax > 0, amax / 127, 1.0).astype(np.float32)
        scales[:, g] = s
        q[:, g * group_size:(g + 1) * group_size] = np.clip(np.round(block / s[:, None]), -127, 127)
    return q, scales
    ### END SOLUTION
    raise NotImplementedError("Task 3.4: pergroup_quantize — one scale per row and group along in")


def pergroup_dequantize(q, scales, group_size):
    """Ŵ[i, j] = q[i, j] · scales[i, j // group_size] → float32 (out, in).

    q: (out, in) int8; scales: (out, ceil(in / g)) float32 (the last group may be shorter).
    """
    ### BEGIN SOLUTION
    expanded = np.repeat(scales, group_size, axis=1)[:, :q.shape[1]]
    return q.astype(np.float32) * expanded
    ### END SOLUTION
    raise NotImplementedError("Task 3.5: pergroup_dequantize — each code times its group's scale")


def pergroup_fake_quantize_fp8(W, group_size):
    """FP8 e4m3 per row and group along `in`: quantize, then dequantize → float32 (out, in).

    Per group: scale = max|block| / 448 (1.0 for an all-zero group), float32. Divide, clamp to
    [−448, 448] (e4m3fn has no infinity: a cast from beyond its range gives NaN), cast to
    `ml_dtypes.float8_e4m3fn` (rounds to the nearest e4m3 value), cast back to float32 and
    multiply by the scale. Groups as in Task 3.4 (shorter last group).
    Example: W = [[1.27, −0.5, 0.04, 0.01, 3.0]], g = 2: the first group's scale is 1.27/448;
    −0.5 / scale = −176.38 → the nearest e4m3 value is −176 → Ŵ = −0.49893.
    """
    ### BEGIN SOLUTION
    out, k = W.shape
    W_hat = np.empty((out, k), np.float32)
    for start in range(0, k, group_size):
        block = W[:, start:start + group_size].astype(np.float32)
        amax = np.max(np.abs(block), axis=1)
        s = np.where(amax > 0, amax / np.float32(448), np.float32(1.0)).astype(np.float32)[:, None]
        codes = np.clip(block / s, -448, 448).astype(ml_dtypes.float8_e4m3fn)
        W_hat[:, start:start + group_size] = codes.astype(np.float32) * s
    return W_hat
    ### END SOLUTION
    raise NotImplementedError("Task 3.6: pergroup_fake_quantize_fp8 — scale, clamp at ±448, cast, back")
