"""Exercises of notebooks 01–03: absmax, zero point (one-sided data, per row), per-channel and
per-group INT8, per-group FP8 e4m3. Inputs are float32, as activations and weights are."""

from __future__ import annotations

import numpy as np

from labkit.quant.groupwise import pergroup_dequantize, pergroup_fake_quantize_fp8, pergroup_quantize
from labkit.quant.zeropoint import (
    perchannel_zeropoint_dequantize, perchannel_zeropoint_quantize, zeropoint_quantize_storable,
)

from .compare import check_array, check_scalar
from .exercise_kit import (
    F32, Exercise, Part, _array_shape, _codes, _floats, _gelu_like, _ints, _normal, _qerr_absmax,
    _qerr_dequantized, _qerr_perchannel, _qerr_zeropoint, _ref, _scale, _weight_outlier_row, _with_outlier,
)

# -- 01 · absmax ----------------------------------------------------------------------------------


def _absmax_cases(rng):
    return [
        ("worked example", {"x": np.array([0.5, -1.27, 0.004], F32)}),
        ("1000 normal samples", {"x": _normal(rng, 1000)}),
        ("one outlier", {"x": _with_outlier(rng)}),
        ("a 2-D array", {"x": rng.uniform(-3, 2, (24, 40)).astype(F32)}),
    ]


def _dequant_cases(rng):
    return [
        ("worked example", {"q": np.array([50, -127, 0], np.int8), "scale": F32(0.01)}),
        ("random codes", {"q": rng.integers(-127, 128, 500).astype(np.int8), "scale": F32(rng.uniform(0.001, 0.1))}),
        ("2-D codes", {"q": rng.integers(-127, 128, (8, 30)).astype(np.int8), "scale": F32(rng.uniform(0.5, 2))}),
    ]


# -- 02 · zero point ------------------------------------------------------------------------------


def _zp_cases(rng):
    return [
        ("worked example", {"x": np.array([-0.5, 0.0, 2.05], F32)}),
        ("post-activation (skewed)", {"x": _gelu_like(rng)}),
        ("uniform in [-1, 3]", {"x": rng.uniform(-1, 3, 800).astype(F32)}),
        ("a 2-D array", {"x": (rng.standard_normal((20, 30)) + 1.0).astype(F32)}),
    ]


def _zp_dequant_cases(rng):
    return [
        ("worked example", {"q": np.array([0, 50, 255], np.uint8), "scale": F32(0.01), "zero_point": 50}),
        ("random codes", {"q": rng.integers(0, 256, 600).astype(np.uint8), "scale": F32(rng.uniform(0.001, 0.05)),
                          "zero_point": int(rng.integers(1, 255))}),
        ("2-D codes", {"q": rng.integers(0, 256, (10, 12)).astype(np.uint8), "scale": F32(rng.uniform(0.01, 1)),
                       "zero_point": int(rng.integers(100, 200))}),
    ]


def _storable_cases(rng):
    relu = np.maximum(rng.standard_normal(600), 0).astype(F32)
    return [
        ("worked example, all positive", {"x": np.array([0.5, 1.0, 2.55], F32)}),
        ("worked example, all negative", {"x": np.array([-2.55, -1.0], F32)}),
        ("ReLU output (≥ 0, many exact zeros)", {"x": relu}),
        ("all negative, uniform in [-3, -1]", {"x": rng.uniform(-3, -1, 500).astype(F32)}),
        ("all positive, far from 0: uniform in [4, 6]", {"x": rng.uniform(4, 6, (20, 25)).astype(F32)}),
        ("straddling 0 (post-activation)", {"x": _gelu_like(rng, 400)}),
        ("all zeros", {"x": np.zeros(16, F32)}),
    ]


def _zp_int(i, label="zero_point"):
    def cmp(got, ref, inp):
        check_scalar(label, got[i], ref[i], integer=True)
        if not 0 <= int(got[i]) <= 255:
            raise AssertionError(f"{label}: {int(got[i])} is not a uint8 code")
    return cmp


def _rows_zp_cases(rng):
    W = (rng.standard_normal((12, 40)) * 0.1).astype(F32)
    W[2] = np.abs(W[2])          # an all-positive row
    W[5] = -np.abs(W[5]) - 0.05  # an all-negative row
    W[7] = 0.0                   # a dead row
    return [
        ("worked example", {"W": np.array([[0.5, 1.0, 2.55], [-2.55, -1.0, 0.0], [0.0, 0.0, 0.0]], F32)}),
        ("weight with one-sided and dead rows", {"W": W}),
        ("plain weight", {"W": (rng.standard_normal((16, 64)) * 0.05).astype(F32)}),
        ("shifted weight (mostly positive rows)", {"W": (rng.standard_normal((8, 30)) * 0.1 + 0.15).astype(F32)}),
    ]


def _rows_zp_dequant_cases(rng):
    return [
        ("worked example", {"q": np.array([[50, 100, 255], [0, 155, 255]], np.uint8),
                            "scales": np.array([0.01, 0.01], F32), "zero_points": np.array([0, 255], np.int32)}),
        ("random codes", {"q": rng.integers(0, 256, (16, 24)).astype(np.uint8),
                          "scales": rng.uniform(1e-3, 0.1, 16).astype(F32),
                          "zero_points": rng.integers(0, 256, 16).astype(np.int32)}),
    ]


def _qerr_rows_zp(inp, out):
    q, s, z = out
    return inp["W"] - (np.asarray(q, np.float64) - np.asarray(z, np.float64)[:, None]) * np.asarray(s, np.float64)[:, None]


# -- 03 · granularity -----------------------------------------------------------------------------


def _weight_cases(rng):
    return [
        ("worked example", {"W": np.array([[1.27, -0.5], [0.0, 0.0], [0.02, 0.01]], F32)}),
        ("weight with an outlier row", {"W": _weight_outlier_row(rng)}),
        ("plain weight", {"W": (rng.standard_normal((12, 40)) * 0.1).astype(F32)}),
    ]


def _perchannel_dequant_cases(rng):
    return [
        ("worked example", {"q": np.array([[127, -50], [0, 0]], np.int8), "scales": np.array([0.01, 1.0], F32)}),
        ("random codes", {"q": rng.integers(-127, 128, (16, 24)).astype(np.int8),
                          "scales": rng.uniform(1e-3, 1.0, 16).astype(F32)}),
    ]


GROUP_EXAMPLE = np.array([[1.27, -0.5, 0.04, 0.01, 3.0]], F32)


def _group_weight(rng, out=16, k=100):
    W = (rng.standard_normal((out, k)) * 0.02).astype(F32)
    W[rng.integers(out)] *= 50                       # an outlier row
    W[:, rng.choice(k, 3, replace=False)] *= 8       # a few outlier input columns
    return W


def _group_cases(rng):
    return [
        ("worked example, g = 2 (last group of 1)", {"W": GROUP_EXAMPLE, "group_size": 2}),
        ("outlier row and columns, g = 32 (100 = 3·32 + 4)", {"W": _group_weight(rng), "group_size": 32}),
        ("g = 16 divides in = 64", {"W": _group_weight(rng, 8, 64), "group_size": 16}),
        ("g larger than in", {"W": _group_weight(rng, 6, 40), "group_size": 128}),
        ("a zero group", {"W": np.concatenate([np.zeros((4, 8), F32), _group_weight(rng, 4, 20)], axis=1),
                          "group_size": 8}),
    ]


def _group_dequant_cases(rng):
    q = rng.integers(-127, 128, (12, 50)).astype(np.int8)
    return [
        ("worked example", {"q": np.array([[127, -50, 127, 32, 127]], np.int8),
                            "scales": np.array([[0.01, 0.04 / 127, 3.0 / 127]], F32), "group_size": 2}),
        ("g = 16, shorter last group", {"q": q, "scales": rng.uniform(1e-3, 0.1, (12, 4)).astype(F32), "group_size": 16}),
        ("g = 25", {"q": q, "scales": rng.uniform(1e-3, 0.1, (12, 2)).astype(F32), "group_size": 25}),
    ]


def _group_scales_shape(i):
    def cmp(got, ref, inp):
        check_array("scales", got[i], shape=ref[i].shape, kind="f")
        _floats(i, "scales", rtol=1e-6)(got, ref, inp)
    return cmp


def _qerr_group(inp, out):
    q, s = out
    return inp["W"] - pergroup_dequantize(np.asarray(q), np.asarray(s), inp["group_size"])


def _fp8_cases(rng):
    W = _group_weight(rng)
    return [
        ("worked example, g = 2", {"W": GROUP_EXAMPLE, "group_size": 2}),
        ("outlier row and columns, g = 32", {"W": W, "group_size": 32}),
        ("per row (g = in)", {"W": W, "group_size": 100}),
        ("g = 7, a zero group", {"W": np.concatenate([np.zeros((4, 7), F32), _group_weight(rng, 4, 30)], axis=1),
                                 "group_size": 7}),
    ]


def _fp8_values(got, ref, inp):
    check_array("Ŵ", got[0], shape=ref[0].shape, kind="f")
    # e4m3 steps are relative: one step is 2^-3 of the value's binade; allow ties to land on a neighbour
    _floats(0, "Ŵ", rtol=1e-6, atol=1e-9, step=lambda i, r: np.abs(np.asarray(r[0], np.float64)) / 8 + 1e-12)(got, ref, inp)


EXERCISES = [
    Exercise("absmax_quantize", "Task 1.1", _ref("absmax_quantize"), _absmax_cases,
             (Part("scale", 1, _scale(1)), Part("codes q", 2, _codes(0))), n_outputs=2, quant_error=_qerr_absmax),
    Exercise("absmax_dequantize", "Task 1.2", _ref("absmax_dequantize"), _dequant_cases,
             (Part("values", 1, _floats(0, "x̂")),)),
    Exercise("zeropoint_quantize", "Task 2.1", _ref("zeropoint_quantize"), _zp_cases,
             (Part("scale", 1, _scale(1)),
              Part("zero_point", 1, lambda g, r, i: check_scalar("zero_point", g[2], r[2], integer=True)),
              Part("codes q", 2, _codes(0))), n_outputs=3, quant_error=_qerr_zeropoint),
    Exercise("zeropoint_dequantize", "Task 2.2", _ref("zeropoint_dequantize"), _zp_dequant_cases,
             (Part("values", 1, _floats(0, "x̂", atol=1e-5)),)),
    Exercise("zeropoint_quantize_storable", "Task 2.3", zeropoint_quantize_storable, _storable_cases,
             (Part("scale", 1, _scale(1)), Part("zero_point", 1, _zp_int(2)), Part("codes q", 1, _codes(0))),
             n_outputs=3, quant_error=_qerr_zeropoint),
    Exercise("perchannel_zeropoint_quantize", "Task 2.4", perchannel_zeropoint_quantize, _rows_zp_cases,
             (Part("scales", 1, _array_shape(1, "scales", lambda i: (i["W"].shape[0],))),
              Part("zero_points", 1, _ints(2, "zero_points")), Part("codes q", 1, _codes(0))),
             n_outputs=3, quant_error=_qerr_rows_zp),
    Exercise("perchannel_zeropoint_dequantize", "Task 2.5", perchannel_zeropoint_dequantize, _rows_zp_dequant_cases,
             (Part("values", 1, _floats(0, "Ŵ", atol=1e-6)),)),
    Exercise("pertensor_absmax_quantize", "Task 3.1", _ref("pertensor_absmax_quantize"), _weight_cases,
             (Part("scale", 1, _scale(1)), Part("codes q", 1, _codes(0))), n_outputs=2, quant_error=_qerr_absmax),
    Exercise("perchannel_absmax_quantize", "Task 3.2", _ref("perchannel_absmax_quantize"), _weight_cases,
             (Part("scales", 1, _array_shape(1, "scales", lambda i: (i["W"].shape[0],))),
              Part("codes q", 2, _codes(0))), n_outputs=2, quant_error=_qerr_perchannel),
    Exercise("perchannel_dequantize", "Task 3.3", _ref("perchannel_dequantize"), _perchannel_dequant_cases,
             (Part("values", 1, _floats(0, "Ŵ")),)),
    Exercise("pergroup_quantize", "Task 3.4", pergroup_quantize, _group_cases,
             (Part("scales", 1, _group_scales_shape(1)), Part("codes q", 2, _codes(0))),
             n_outputs=2, quant_error=_qerr_group),
    Exercise("pergroup_dequantize", "Task 3.5", pergroup_dequantize, _group_dequant_cases,
             (Part("values", 1, _floats(0, "Ŵ")),)),
    Exercise("pergroup_fake_quantize_fp8", "Task 3.6", pergroup_fake_quantize_fp8, _fp8_cases,
             (Part("values", 1, _fp8_values),), quant_error=_qerr_dequantized("W")),
]


from .integrity import freeze_module as _freeze  # noqa: E402  (read-only once built)

_freeze(__name__)
