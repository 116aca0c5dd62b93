"""Quantization schemes: what to do to a model's linears, as frozen dataclasses in one registry.

A scheme is *data*: ``WeightOnly(fmt="int8", granularity=PerRow())`` says "store every decoder
weight as int8 codes with one scale per output row", nothing about how. The how lives in a handler
registered for the scheme's *type* (``labkit.nn.convert.register_handler``), in the same way as
torchao's ``AOBaseConfig`` subclasses and its handler table: a new kind of scheme (W8A8,
SmoothQuant) is a new dataclass plus a handler in its own module, never a new ``elif``.

Short names are what the CLI and the notebooks use:

* ``none`` — the unquantized baseline (``Baseline()``);
* ``int8-tensor``, ``int8-row``, ``int8-group{64,128,256,512}``;
* ``fp8-tensor``, ``fp8-row``, ``fp8-group{64,128,256,512}`` (fp8 = e4m3fn, max 448).

Worked example: ``get_scheme("int8-group128")`` is ``WeightOnly(fmt="int8",
granularity=PerGroup(128))``; on a down-projection weight ``(out=576, in=1536)`` it stores
576·1536 int8 codes and 576·12 float32 scales: 884,736 + 27,648 bytes instead of 3,538,944 in
float32 (3.88x smaller).

``register_scheme(name, scheme)`` adds a name (another module may add ``w8a8-int8`` etc.);
re-registering a name with a *different* scheme is an error, so two modules cannot silently fight
over one name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .quant.formats import Format, get_format
from .quant.granularity import Granularity, PerGroup, PerRow, PerTensor, PerToken, check_granularity


@dataclass(frozen=True)
class Scheme:
    """Base of every scheme. Subclasses are frozen dataclasses with a ``name`` property."""

    @property
    def name(self) -> str:  # pragma: no cover - every subclass overrides it
        return type(self).__name__


@dataclass(frozen=True)
class Baseline(Scheme):
    """No quantization: the reference every other scheme is measured against."""

    @property
    def name(self) -> str:
        return "none"


WEIGHT_ONLY_FORMATS = ("int8", "fp8_e4m3", "fp8_e5m2")


@dataclass(frozen=True)
class WeightOnly(Scheme):
    """Weight-only quantization: weights become 8-bit codes + float32 scales, activations stay float.

    ``fmt``: "int8", "fp8"/"fp8_e4m3" or "fp8_e5m2" (normalized to the format table's name).
    ``granularity``: ``PerTensor()``, ``PerRow()`` or ``PerGroup(g)``; it reduces over the last
    axis of ``w: (out, in)``, i.e. groups run along K (see ``labkit.quant.granularity``).
    """

    fmt: str = "int8"
    granularity: Granularity = field(default_factory=PerRow)

    def __post_init__(self) -> None:
        f = get_format(self.fmt)
        if f.name not in WEIGHT_ONLY_FORMATS:
            raise ValueError(f"WeightOnly supports the 8-bit formats {WEIGHT_ONLY_FORMATS}, got {self.fmt!r}")
        object.__setattr__(self, "fmt", f.name)  # "fp8" and "fp8_e4m3" must be the same scheme
        g = check_granularity(self.granularity)
        if isinstance(g, PerToken):
            raise ValueError("PerToken() is a granularity for activations; a weight takes PerTensor(), "
                             "PerRow() or PerGroup(g)")

    @property
    def format(self) -> Format:
        return get_format(self.fmt)

    @property
    def name(self) -> str:
        fmt = "fp8" if self.fmt == "fp8_e4m3" else self.fmt
        g = self.granularity
        part = {PerTensor: "tensor", PerRow: "row"}.get(type(g)) or f"group{getattr(g, 'group_size', '')}"
        return f"{fmt}-{part}"

    def __str__(self) -> str:
        return self.name


SCHEMES: dict[str, Scheme] = {}

# Modules that register more schemes (and their handlers) when imported; loaded on the first lookup
# so that ``get_scheme("smoothquant-int8")`` works without the caller importing them first.
PLUGINS = ("labkit.models.w8a8_schemes",)
_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        import importlib

        for module in PLUGINS:
            importlib.import_module(module)


# Parametrised names (``smoothquant-int8@0.75``): a resolver maps a name it understands to a Scheme
# and returns None for any other; consulted only for names that are not registered.
RESOLVERS: list = []


def register_scheme(name: str, scheme: Scheme) -> Scheme:
    """Make ``scheme`` available as ``get_scheme(name)``; returns it. Names are lower case."""
    if not isinstance(scheme, Scheme):
        raise TypeError(f"register_scheme needs a labkit.schemes.Scheme, got {type(scheme).__name__}")
    key = name.lower()
    if key in SCHEMES and SCHEMES[key] != scheme:
        raise ValueError(f"scheme name {name!r} is already registered as {SCHEMES[key]!r}")
    SCHEMES[key] = scheme
    return scheme


def get_scheme(scheme: str | Scheme) -> Scheme:
    """A registered short name (``"int8-row"``) or a ``Scheme`` → the ``Scheme``.

    An unknown name raises ``ValueError`` listing every known one.
    """
    if isinstance(scheme, Scheme):
        return scheme
    _load_plugins()
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a name such as 'int8-row' or a Scheme, got {type(scheme).__name__}")
    key = scheme.lower().strip()
    if key not in SCHEMES:
        for resolve in RESOLVERS:
            found = resolve(key)
            if found is not None:
                return found
        raise ValueError(f"unknown scheme {scheme!r}; known schemes: {', '.join(scheme_names())}")
    return SCHEMES[key]


def scheme_names() -> list[str]:
    """Every registered short name, in registration order (baseline first)."""
    _load_plugins()
    return list(SCHEMES)


GROUP_SIZES = (64, 128, 256, 512)

register_scheme("none", Baseline())
for _fmt in ("int8", "fp8"):
    for _g in [PerTensor(), PerRow()] + [PerGroup(n) for n in GROUP_SIZES]:
        _s = WeightOnly(fmt=_fmt, granularity=_g)
        register_scheme(_s.name, _s)
del _fmt, _g, _s
