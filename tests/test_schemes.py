"""Scheme registry: short names, validation, registration rules."""

import pytest

from labkit.quant import PerGroup, PerRow, PerTensor, PerToken
from labkit.schemes import SCHEMES, Baseline, Scheme, WeightOnly, get_scheme, register_scheme, scheme_names


def test_short_names_map_to_the_documented_schemes():
    assert get_scheme("none") == Baseline()
    assert get_scheme("int8-row") == WeightOnly("int8", PerRow())
    assert get_scheme("int8-tensor") == WeightOnly("int8", PerTensor())
    assert get_scheme("fp8-group128") == WeightOnly("fp8_e4m3", PerGroup(128))
    expected = {"none"} | {f"{f}-{g}" for f in ("int8", "fp8")
                           for g in ("tensor", "row", "group64", "group128", "group256", "group512")}
    assert set(scheme_names()) >= expected


def test_names_round_trip_and_fp8_alias():
    for name in scheme_names():
        assert get_scheme(name).name == name
    assert WeightOnly("fp8", PerRow()) == WeightOnly("fp8_e4m3", PerRow())  # one scheme, two spellings
    assert get_scheme("INT8-Row") is SCHEMES["int8-row"]
    s = WeightOnly("int8", PerGroup(32))
    assert get_scheme(s) is s and s.name == "int8-group32"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as e:
        get_scheme("int4-row")
    assert "int8-row" in str(e.value) and "fp8-group128" in str(e.value)


@pytest.mark.parametrize("kwargs, error", [
    (dict(fmt="int4"), ValueError), (dict(fmt="uint8"), ValueError),
    (dict(granularity=PerToken()), ValueError), (dict(granularity="row"), TypeError),
])
def test_invalid_weight_only_schemes(kwargs, error):
    with pytest.raises(error):
        WeightOnly(**kwargs)


def test_schemes_are_frozen_and_hashable():
    s = get_scheme("int8-row")
    with pytest.raises(Exception):
        s.fmt = "fp8_e4m3"
    assert len({s, WeightOnly("int8", PerRow())}) == 1


def test_register_scheme_rules():
    s = WeightOnly("int8", PerGroup(16))
    try:
        assert register_scheme("test-int8-g16", s) is s
        assert get_scheme("test-int8-g16") is s
        register_scheme("test-int8-g16", WeightOnly("int8", PerGroup(16)))  # same scheme again: fine
        with pytest.raises(ValueError, match="already registered"):
            register_scheme("test-int8-g16", WeightOnly("int8", PerGroup(32)))
        with pytest.raises(TypeError):
            register_scheme("bad", "int8-row")
    finally:
        SCHEMES.pop("test-int8-g16", None)


def test_a_new_scheme_type_plugs_in_without_editing_labkit():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Identity(Scheme):
        @property
        def name(self):
            return "identity"

    assert isinstance(get_scheme(Identity()), Scheme)
