"""Granularity objects: scale shapes, parsing, validation."""

import dataclasses

import numpy as np
import pytest

from labkit.quant import PerGroup, PerRow, PerTensor, PerToken, choose_qparams, parse_granularity, scale_shape


@pytest.mark.parametrize(
    "shape,granularity,expected",
    [
        ((8, 576), PerTensor(), ()),
        ((8, 576), PerRow(), (8,)),
        ((2, 5, 576), PerToken(), (2, 5)),
        ((8, 576), PerGroup(128), (8, 5)),  # 4 groups of 128 + one of 64
        ((8, 512), PerGroup(128), (8, 4)),
        ((8, 576), PerGroup(1000), (8, 1)),  # one group shorter than g
        ((576,), PerGroup(128), (5,)),
    ],
)
def test_scale_shape(shape, granularity, expected):
    assert scale_shape(shape, granularity) == expected
    qp = choose_qparams(np.ones(shape, np.float32), "int8", granularity)
    assert tuple(qp.scale.shape) == expected  # the primitives agree with the declared shape


@pytest.mark.parametrize(
    "text,expected",
    [("tensor", PerTensor()), ("row", PerRow()), ("channel", PerRow()), ("token", PerToken()),
     ("group128", PerGroup(128)), (" Group32 ", PerGroup(32))],
)
def test_parse(text, expected):
    assert parse_granularity(text) == expected


@pytest.mark.parametrize("text", ["group", "group-1", "blocks", "group0"])
def test_parse_rejects(text):
    with pytest.raises(ValueError):
        parse_granularity(text)


@pytest.mark.parametrize("g", [0, -1])
def test_group_size_must_be_positive(g):
    with pytest.raises(ValueError, match="must be positive"):
        PerGroup(g)


@pytest.mark.parametrize("g", [1.5, "128", True])
def test_group_size_must_be_int(g):
    with pytest.raises(TypeError, match="takes an int"):
        PerGroup(g)


def test_frozen_hashable_and_repr():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PerGroup(128).group_size = 64  # type: ignore[misc]
    assert len({PerGroup(128), PerGroup(128), PerRow()}) == 2
    assert repr(PerGroup(64)) == "PerGroup(64)" and repr(PerTensor()) == "PerTensor()"


def test_unknown_granularity_object():
    with pytest.raises(TypeError, match="granularity must be PerTensor"):
        choose_qparams(np.ones((2, 2), np.float32), "int8", "row")
