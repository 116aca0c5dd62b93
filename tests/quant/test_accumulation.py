"""labkit.quant.accumulation against hand-computed cases and plain float64 arithmetic."""

import pytest
import torch

from labkit.quant.accumulation import (
    fake_quant_matmul, fp8_matmul_limited, int8_matmul, limited_accumulate, relative_error, round_to_bits,
)


def test_round_to_bits_by_hand():
    # 8.5 = 1000.1b needs 5 bits: with 4 it ties and goes to the even 8; 9.5 → 10 (1010b is even)
    x = torch.tensor([8.5, 9.5, 1000.0625, 0.0, -3.0], dtype=torch.float64)
    assert round_to_bits(x, 4).tolist() == [8.0, 10.0, 1024.0, 0.0, -3.0]
    assert round_to_bits(x, 14)[2].item() == 1000.0625   # step 2^(10-14) = 1/16: representable
    assert round_to_bits(torch.tensor([1000.03125]), 14).item() == 1000.0   # a tie → the even 16000/16
    with pytest.raises(ValueError, match="bits"):
        round_to_bits(x, 0)


def test_worked_example_of_the_notebook():
    qa = torch.tensor([[8.0, 1.0, 1.0, 1.0]])
    qb = torch.tensor([[1.0], [0.5], [0.5], [0.5]])
    assert limited_accumulate(qa, qb, 4).item() == 8.0          # every 0.5 is lost
    assert limited_accumulate(qa, qb, 4, promote_every=2).item() == 9.0
    assert limited_accumulate(qa, qb, 24).item() == 9.5          # enough bits: exact


def test_int8_gemm_equals_fake_quant_up_to_output_rounding():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, 2048, generator=gen), torch.randn(2048, 8, generator=gen)
    assert relative_error(int8_matmul(a, b), fake_quant_matmul(a, b, "int8")) < 1e-7


def test_fp8_limited_accumulation_error_grows_with_k_and_promotion_fixes_it():
    gen = torch.Generator().manual_seed(1)
    errs, fixed = [], []
    for k in (256, 2048):
        a, b = torch.rand(8, k, generator=gen), torch.rand(k, 4, generator=gen)
        exact = fake_quant_matmul(a, b, "fp8_e4m3")
        errs.append(relative_error(fp8_matmul_limited(a, b), exact))
        fixed.append(relative_error(fp8_matmul_limited(a, b, promote_every=128), exact))
    assert errs[1] > 3 * errs[0]
    assert fixed[1] < errs[1] / 10
    assert fp8_matmul_limited(a, b, acc_bits=52).sub(exact.float()).abs().max() < 1e-3
