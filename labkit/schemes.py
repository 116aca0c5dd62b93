"""Quantization schemes: what to do to a model's linears, as frozen dataclasses in one registry.

A scheme is *data*: ``WeightOnly(fmt="int8", granularity=PerRow())`` says "store every decoder
weight as int8 codes with one scale per output row", nothing about how. The how lives in a handler
registered for the scheme's *type* (``labkit.nn.convert.register_handler``), in the same way as
torchao's ``AOBaseConfig`` subclasses and its handler table: a new kind of scheme (W8A8,
SmoothQuant) is a new dataclass plus a handler in its own module, never a new ``elif``.

Short names are what the CLI and the notebooks use:

* ``none`` — the unquantized baseline (``Baseline()``);
* ``int8-tensor``, ``int8-row``, ``int8-group{64,128,256,512}``;
* ``fp8-tensor``, ``fp8-row``, ``fp8-group{64,128,256,512}`` (fp8 = e4m3fn, max 448);
* ``w8a8-int8``, ``w8a8-fp8`` — ``W8A8(fmt)``: per-row 8-bit weights × per-token 8-bit activations;
* ``smoothquant-int8``, ``smoothquant-fp8`` — ``SmoothQuant(fmt, alpha=0.5)``: calibrate, fold the
  smoothing factors, then W8A8; ``smoothquant-int8@0.75`` (or ``with_alpha(scheme, 0.75)``) for
  another migration strength α.

Worked example: ``get_scheme("int8-group128")`` is ``WeightOnly(fmt="int8",
granularity=PerGroup(128))``; on a down-projection weight ``(out=576, in=1536)`` it stores
576·1536 int8 codes and 576·12 float32 scales: 884,736 + 27,648 bytes instead of 3,538,944 in
float32 (3.88x smaller).

Where the work happens (all registered by plain imports that point *down* the layers, see
``labkit/__init__.py``): ``labkit.nn.convert`` maps ``WeightOnly`` to ``QuantLinear`` and ``W8A8``
to ``W8A8Linear``; ``labkit.models.w8a8_schemes`` registers SmoothQuant's model-level step
(calibration on the lab text, then folding), imported by ``import labkit.models``.

``register_scheme(name, scheme)`` adds a name; re-registering a name with a *different* scheme is an error, so two modules cannot silently fight
over one name.
"""

from __future__ import annotations

import dataclasses
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


W8A8_FORMATS = ("int8", "fp8_e4m3")


def _short(fmt: str) -> str:
    return "fp8" if fmt == "fp8_e4m3" else fmt


@dataclass(frozen=True)
class W8A8(Scheme):
    """Weights per row and activations per token (dynamic), both in ``fmt`` ("int8" or "fp8"/"fp8_e4m3").

    ``mode`` does not change W8A8: "fake" and "real" run the same 8-bit arithmetic."""

    fmt: str = "int8"

    def __post_init__(self) -> None:
        f = get_format(self.fmt)
        if f.name not in W8A8_FORMATS:
            raise ValueError(f"W8A8 supports the formats {W8A8_FORMATS}, got {f.name!r}")
        object.__setattr__(self, "fmt", f.name)

    @property
    def format(self) -> Format:
        return get_format(self.fmt)

    @property
    def name(self) -> str:
        return f"w8a8-{_short(self.fmt)}"


@dataclass(frozen=True)
class SmoothQuant(W8A8):
    """W8A8 after SmoothQuant smoothing with strength ``alpha`` ∈ [0, 1], calibrated on
    ``n_windows × seq_len`` tokens of ``calibration`` (a ``labkit.data.load_ppl_text`` source, seeded by
    ``seed``) taken from the *second half* of the token stream, so an evaluation on the first half
    never scores a token the calibration saw; ``scope`` as in ``labkit.models.smoothing``."""

    alpha: float = 0.5
    calibration: str = "lab"
    n_windows: int = 8
    seq_len: int = 256
    seed: int = 0
    scope: str = "all"

    needs_preparer = True  # class attribute, not a field: quantize_model must smooth the model first

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 <= self.alpha <= 1:
            raise ValueError(f"SmoothQuant alpha must be a number in [0, 1], got {self.alpha!r}")
        if self.n_windows < 1 or self.seq_len < 2:
            raise ValueError(f"need n_windows ≥ 1 and seq_len ≥ 2, got {self.n_windows}, {self.seq_len}")

    @property
    def name(self) -> str:
        base = f"smoothquant-{_short(self.fmt)}"
        return base if self.alpha == 0.5 else f"{base}@{self.alpha:g}"


def with_alpha(scheme: Scheme, alpha: float | None) -> Scheme:
    """``scheme`` with SmoothQuant strength ``alpha`` (None: unchanged). Non-SmoothQuant schemes have
    no α: giving one is an error rather than silently ignored."""
    if alpha is None:
        return scheme
    if not isinstance(scheme, SmoothQuant):
        raise ValueError(f"--alpha applies to SmoothQuant schemes (smoothquant-int8, smoothquant-fp8), "
                         f"not to {scheme.name}")
    return dataclasses.replace(scheme, alpha=float(alpha))


SCHEMES: dict[str, Scheme] = {}


def _smoothquant_at(name: str) -> Scheme | None:
    """``smoothquant-int8@0.75`` → ``SmoothQuant("int8", alpha=0.75)``; None for other names."""
    base, sep, alpha = name.partition("@")
    if not sep or base not in ("smoothquant-int8", "smoothquant-fp8"):
        return None
    try:
        value = float(alpha)
    except ValueError:
        raise ValueError(f"{name!r}: the part after '@' must be α, a number in [0, 1] (e.g. {base}@0.75)") from None
    return SmoothQuant(fmt=base.split("-")[1], alpha=value)


# Parametrised names (``smoothquant-int8@0.75``): a resolver maps a name it understands to a Scheme
# and returns None for any other; consulted only for names that are not registered.
RESOLVERS: list = [_smoothquant_at]


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
    return list(SCHEMES)


GROUP_SIZES = (64, 128, 256, 512)

register_scheme("none", Baseline())
for _fmt in ("int8", "fp8"):
    for _g in [PerTensor(), PerRow()] + [PerGroup(n) for n in GROUP_SIZES]:
        _s = WeightOnly(fmt=_fmt, granularity=_g)
        register_scheme(_s.name, _s)
for _s in (W8A8("int8"), W8A8("fp8_e4m3"), SmoothQuant("int8"), SmoothQuant("fp8_e4m3")):
    register_scheme(_s.name, _s)
del _fmt, _g, _s
