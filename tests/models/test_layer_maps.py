"""layer_maps is the one place that says which linears are quantized and which architectures exist."""

import pytest
from torch import nn

from labkit.models.layer_maps import ARCHITECTURES, DECODER_LINEARS, LAYER_MAPS, layer_map, linear_names
from labkit.models.loader import SUPPORTED_ARCHS
from labkit.models.tiny import ARCHS, tiny_model
from labkit.nn import quantize_model


def test_architectures_are_listed_once():
    assert SUPPORTED_ARCHS == ARCHITECTURES == ARCHS == tuple(LAYER_MAPS)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_quantize_model_replaces_exactly_the_layer_map_linears(arch):
    model = tiny_model(arch)
    names = linear_names(model)
    assert len(names) == 2 * len(DECODER_LINEARS)
    for scheme in ("int8-row", "w8a8-int8"):
        report = quantize_model(model, scheme).report
        assert list(report.layers) == names, f"{arch} {scheme}: quantize_model and layer_maps disagree"


def test_unknown_architecture_lists_the_known_ones():
    m = nn.Linear(2, 2)
    m.config = type("C", (), {"model_type": "gpt2"})()
    with pytest.raises(ValueError, match="known: llama, qwen2, qwen3"):
        layer_map(m)
