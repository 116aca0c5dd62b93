"""The fake-quant matmul experiment against an independent numpy float64 implementation."""

import json

import numpy as np
import pytest
import torch

from labkit.bench.matmul_error import error_metrics, measure, quantized_product
from labkit.cli import main


def _int8_rows_numpy(w):  # w: (N, K), one scale per row, round half to even, ±127
    s = np.abs(w).max(axis=1, keepdims=True) / 127.0
    return np.clip(np.rint(w / s), -127, 127) * s


def test_error_metrics_hand_computed():
    c = torch.tensor([[3.0, 4.0]])
    c_hat = torch.tensor([[3.0, 3.0]])
    max_abs, mean_abs, rel = error_metrics(c, c_hat)
    assert (max_abs, mean_abs) == (1.0, 0.5)
    assert rel == pytest.approx(1.0 / 5.0)  # ||[0, 1]|| / ||[3, 4]||


def test_int8_row_product_matches_numpy_float64():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(5, 12, generator=gen), torch.randn(12, 7, generator=gen)
    ours = quantized_product(a, b, "int8", "row", w8a8=False).numpy()
    a64, b64 = a.double().numpy(), b.double().numpy()
    ref = a64 @ _int8_rows_numpy(b64.T).T  # per row of W = B^T = per output column of B
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_w8a8_quantizes_activations_per_token():
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(4, 16, generator=gen), torch.randn(16, 3, generator=gen)
    ours = quantized_product(a, b, "int8", "tensor", w8a8=True).numpy()
    a64, b64 = a.double().numpy(), b.double().numpy()
    sb = np.abs(b64).max() / 127.0
    ref = _int8_rows_numpy(a64) @ (np.clip(np.rint(b64 / sb), -127, 127) * sb)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_int8_row_beats_fp8_on_gaussian_weights_and_per_tensor_int8_suffers_from_outliers():
    normal = {(r.fmt, r.granularity, r.activations): r for r in measure((64, 256, 64), trials=2)}
    assert normal[("int8", "row", "float")].rel_fro < normal[("fp8_e4m3", "row", "float")].rel_fro
    outl = {(r.fmt, r.granularity, r.activations): r for r in measure((64, 256, 64), trials=2, dist="outliers")}
    assert outl[("int8", "tensor", "float")].rel_fro > 2 * outl[("fp8_e4m3", "tensor", "float")].rel_fro


def test_cli_json_contract(capsys):
    assert main(["matmul-error", "--shape", "8", "16", "4", "--trials", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shape"] == [8, 16, 4] and out["trials"] == 2
    cases = {(r["fmt"], r["granularity"], r["activations"]) for r in out["results"]}
    assert len(cases) == 8  # {int8, fp8} x {tensor, row} x {weight-only, W8A8}
    for r in out["results"]:
        assert 0 < r["mean_abs"] <= r["max_abs"] and 0 < r["rel_fro"] < 1


def test_cli_bad_shape_is_a_clear_error(capsys):
    assert main(["matmul-error", "--shape", "0", "4", "4"]) == 2
    assert "shape entries and trials must be positive" in capsys.readouterr().err
