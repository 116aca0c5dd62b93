"""Number formats: the one table every quantizer reads its bounds from.

A format says which codes exist and how a real number becomes one:

* integer formats round half to even onto a uniform grid and clip to ``[qmin, qmax]``;
  ``int8`` keeps the grid symmetric (-127..127, not -128) so that ``-x`` quantizes to ``-q``
  and zero is exact — the convention of absmax quantization and of torchao's symmetric int8.
  ``int4`` follows the same rule (-7..7). ``uint8`` (0..255) is the asymmetric format that needs
  a zero point.
* float formats (fp8) are a cast: the value is saturated to ``±max`` and then rounded to the
  nearest representable fp8 number (round half to even on the mantissa), exactly what
  ``tensor.to(torch.float8_e4m3fn)`` and ``ml_dtypes.float8_e4m3fn`` do. e4m3fn has 3 mantissa
  bits and max 448; e5m2 has 2 mantissa bits and max 57344. Because the spacing of a float grid
  grows with the magnitude, fp8's *relative* error is roughly constant (≤ 2^-4 for e4m3) while
  int8's *absolute* error is constant (≤ scale/2).

Worked number: with absmax 2.54, int8's scale is 2.54/127 = 0.02, so 1.013 → round(50.65) = 51
→ 1.02; fp8 e4m3's scale is 2.54/448, 1.013/scale = 178.7 → nearest e4m3 value 176 → 0.998.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal


@dataclass(frozen=True)
class Format:
    """A quantized number format.

    ``qmin``/``qmax`` are the smallest and largest codes (for floats: ±the largest finite value).
    ``mantissa_bits`` is 0 for integer formats.
    """

    name: str
    kind: Literal["int", "float"]
    bits: int
    qmin: float
    qmax: float
    mantissa_bits: int = 0

    @property
    def symmetric(self) -> bool:
        return self.qmin == -self.qmax

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    def __repr__(self) -> str:
        return f"Format({self.name}: [{self.qmin:g}, {self.qmax:g}])"


FORMATS: dict[str, Format] = {
    "int8": Format("int8", "int", 8, -127, 127),
    "uint8": Format("uint8", "int", 8, 0, 255),
    "int4": Format("int4", "int", 4, -7, 7),
    "fp8_e4m3": Format("fp8_e4m3", "float", 8, -448.0, 448.0, mantissa_bits=3),
    "fp8_e5m2": Format("fp8_e5m2", "float", 8, -57344.0, 57344.0, mantissa_bits=2),
}

ALIASES: dict[str, str] = {"fp8": "fp8_e4m3", "e4m3": "fp8_e4m3", "e5m2": "fp8_e5m2"}


@lru_cache(maxsize=None)
def symmetric_int(bits: int) -> Format:
    """The symmetric integer format with ``bits`` bits: codes -(2^(bits-1)-1) .. 2^(bits-1)-1.

    GPTQ experiments use 2..8 bits; int8 and int4 here are the same objects as in ``FORMATS``.
    """
    if not isinstance(bits, int) or isinstance(bits, bool) or not 2 <= bits <= 8:
        raise ValueError(f"n_bits must be an integer from 2 to 8, got {bits!r}")
    qmax = 2 ** (bits - 1) - 1
    return FORMATS.get(f"int{bits}") or Format(f"int{bits}", "int", bits, -qmax, qmax)


def get_format(fmt: str | Format) -> Format:
    """Look a format up by name (``"int8"``, ``"uint8"``, ``"int4"``, ``"fp8_e4m3"``/``"fp8"``,
    ``"fp8_e5m2"``, or ``"intN"`` for 2 ≤ N ≤ 8); an unknown name lists the known ones."""
    if isinstance(fmt, Format):
        return fmt
    if not isinstance(fmt, str):
        raise TypeError(f"fmt must be a format name or a Format, got {type(fmt).__name__}")
    name = ALIASES.get(fmt.lower(), fmt.lower())
    if name in FORMATS:
        return FORMATS[name]
    if name.startswith("int") and name[3:].isdigit() and 2 <= int(name[3:]) <= 8:
        return symmetric_int(int(name[3:]))
    known = ", ".join(list(FORMATS) + list(ALIASES))
    raise ValueError(f"unknown format {fmt!r}; known formats: {known} (or intN for N in 2..8)")
