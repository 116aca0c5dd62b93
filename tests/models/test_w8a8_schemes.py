"""The W8A8 / SmoothQuant short names work through labkit.nn.quantize_model like every other scheme."""

import pytest
import torch

from labkit.models.tiny import tiny_model
from labkit.models.w8a8 import count_act_quantized
from labkit.models.w8a8_schemes import calibration_ids
from labkit.nn import quantize_model
from labkit.schemes import W8A8, SmoothQuant, get_scheme, scheme_names, with_alpha

NAMES = ["w8a8-int8", "w8a8-fp8", "smoothquant-int8", "smoothquant-fp8"]


def test_names_are_registered_and_round_trip():
    for name in NAMES:
        assert name in scheme_names()
        assert get_scheme(name).name == name
    assert get_scheme("smoothquant-fp8") == SmoothQuant(fmt="fp8", alpha=0.5)
    assert get_scheme("w8a8-int8") == W8A8("int8")


def test_with_alpha_and_validation():
    s = with_alpha(get_scheme("smoothquant-int8"), 0.75)
    assert s.alpha == 0.75 and s.name == "smoothquant-int8@0.75"
    assert with_alpha(get_scheme("w8a8-int8"), None) == W8A8("int8")
    with pytest.raises(ValueError, match="applies to SmoothQuant"):
        with_alpha(get_scheme("w8a8-int8"), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SmoothQuant("int8", alpha=1.5)
    with pytest.raises(ValueError, match="W8A8 supports"):
        W8A8("int4")


def test_calibration_windows_come_from_the_second_half_of_the_text():
    from labkit.data import load_ppl_text, tokenize_corpus
    from labkit.models.tiny import tiny_tokenizer

    model = tiny_model("llama")
    cal = calibration_ids(model, SmoothQuant("int8", n_windows=3, seq_len=64))
    assert cal.shape == (3, 64)
    ids = tokenize_corpus(load_ppl_text("lab"), tiny_tokenizer())
    half = ids[ids.numel() // 2 :]
    for row in cal:  # each window is a contiguous slice of the second half
        starts = [i for i in range(half.numel() - 63) if torch.equal(half[i : i + 64], row)]
        assert starts, "calibration window not found in the second half of the lab text"


@pytest.mark.parametrize("name", NAMES)
def test_quantize_model_converts_every_decoder_linear(name):
    model = tiny_model("qwen2")
    res = quantize_model(model, name, "real")
    assert res.report.n_layers == 14 and count_act_quantized(res.model) == 14
    x = torch.randint(1, 320, (1, 24), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert not torch.equal(res.model(x).logits, model(x).logits), f"{name} left the logits unchanged"


def test_smoothquant_differs_from_plain_w8a8_and_alpha_matters():
    model = tiny_model("qwen3")
    x = torch.randint(1, 320, (1, 24), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        plain = quantize_model(model, "w8a8-int8").model(x).logits
        sq = quantize_model(model, "smoothquant-int8").model(x).logits
        sq9 = quantize_model(model, with_alpha(get_scheme("smoothquant-int8"), 0.9)).model(x).logits
    assert not torch.equal(plain, sq), "smoothing changed nothing: was the preparer run?"
    assert not torch.equal(sq, sq9), "α did not change the result"


def test_alpha_in_the_name():
    s = get_scheme("smoothquant-int8@0.75")
    assert s == SmoothQuant("int8", alpha=0.75) and s.name == "smoothquant-int8@0.75"
    assert get_scheme(s.name) == s and get_scheme("smoothquant-fp8@0.5").name == "smoothquant-fp8"
    assert with_alpha(get_scheme("smoothquant-fp8"), 0.25).name == "smoothquant-fp8@0.25"
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        get_scheme("smoothquant-int8@2")
    with pytest.raises(ValueError, match="after '@'"):
        get_scheme("smoothquant-int8@high")
    with pytest.raises(ValueError, match="known schemes"):
        get_scheme("w8a8-int8@0.5")


def test_one_pipeline_the_scheme_and_the_shared_stats_path_agree():
    """quantize_model(model, smoothquant) calibrates on the scheme's text; quantize_smoothed with those same
    statistics must give bitwise the same model (one path, two entries)."""
    from labkit.models.calibration import calibrate
    from labkit.models.layer_maps import linear_names
    from labkit.models.w8a8_schemes import quantize_smoothed

    model = tiny_model("llama")
    scheme = SmoothQuant("int8", alpha=0.6, n_windows=2, seq_len=32)
    stats = calibrate(model, calibration_ids(model, scheme), names=linear_names(model))
    x = torch.randint(1, 320, (1, 16), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        via_scheme = quantize_model(model, scheme).model(x).logits
        via_stats = quantize_smoothed(model, scheme, stats)
        assert torch.equal(via_scheme, via_stats.model(x).logits)
    assert via_stats.report.scheme == "smoothquant-int8@0.6" and via_stats.report.n_layers == 14
    with pytest.raises(ValueError, match="needs calibration statistics"):
        quantize_smoothed(model, scheme)


def test_smoothquant_without_its_preparer_says_what_to_import():
    from labkit.nn.convert import PREPARERS

    saved = PREPARERS.pop(SmoothQuant)
    try:
        with pytest.raises(TypeError, match="import labkit.models"):
            quantize_model(tiny_model("qwen3"), "smoothquant-int8")
    finally:
        PREPARERS[SmoothQuant] = saved
