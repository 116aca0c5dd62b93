def zeropoint_quantize_storable(x):
    """Asymmetric UINT8 quantization whose zero point is always a valid code (0..255).

    x: float array, any shape (may be all positive, all negative, or all zeros).
    Returns (q, scale, zero_point): q uint8 with x's shape; scale a float; zero_point a Python
    int in 0..255. The grid covers [min(x, 0), max(x, 0)] — a range that always contains 0.
    All-zero x: scale 1.0, zero_point 0.
    Example: [0.5, 1.0, 2.55] → ([50, 100, 255], 0.01, 0); [-2.55, -1.0] → ([0, 155], 0.01, 255).
    """
    ### BEGIN SOLUTION
    lo = min(np.min(x), 0)
    hi = max(np.max(x), 0)
    scale = (hi - lo) / 255 if hi > lo else np.float32(1.0)
    zero_point = int(np.round(-lo / scale))
    q = np.clip(np.round(x / scale) + zero_point, 0, 255).astype(np.uint8)
    return q, scale, zero_point
    ### END SOLUTION
    raise NotImplementedError("Task 2.3: zeropoint_quantize_storable — a range that contains 0, then as in Task 2.1")


def perchannel_zeropoint_quantize(W):
    """UINT8 with one scale and one zero point per output row of W: (out, in).

    Each row i gets the Task 2.3 rule on its own values: range [min(W[i], 0), max(W[i], 0)] over
    255 steps (scale 1.0 and zero point 0 for an all-zero row).
    Returns (q, scales, zero_points): q uint8 (out, in); scales (out,) float, W's dtype;
    zero_points (out,) integer array (e.g. np.int32) with values in 0..255.
    Example: W = [[0.5, 1.0, 2.55], [-2.55, -1.0, 0.0]] → scales [0.01, 0.01], zero_points [0, 255],
    q = [[50, 100, 255], [0, 155, 255]].
    """
    ### BEGIN SOLUTION
    lo = np.minimum(W.min(axis=1), 0)
    hi = np.maximum(W.max(axis=1), 0)
    width = hi - lo
    scales = np.where(width > 0, width / 255, 1.0).astype(W.dtype)
    zero_points = np.round(-lo / scales).astype(np.int32)
    q = np.clip(np.round(W / scales[:, None]) + zero_points[:, None], 0, 255).astype(np.uint8)
    return q, scales, zero_points
    ### END SOLUTION
    raise NotImplementedError("Task 2.4: perchannel_zeropoint_quantize — Task 2.3's rule, row by row")


def perchannel_zeropoint_dequantize(q, scales, zero_points):
    """Ŵ[i, j] = scales[i] · (q[i, j] − zero_points[i]) for q: (out, in) uint8, scales and
    zero_points: (out,). Returns a float32 array (out, in); no uint8 wrap-around."""
    ### BEGIN SOLUTION
    return (q.astype(np.float32) - zero_points[:, None].astype(np.float32)) * scales[:, None]
    ### END SOLUTION
    raise NotImplementedError("Task 2.5: perchannel_zeropoint_dequantize — per-row zero point and scale")
