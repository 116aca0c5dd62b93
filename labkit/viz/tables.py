"""Result tables rendered as tables: ``table(rows, units=..., formats=...)``.

A notebook's last expression ``table(rows)`` shows an HTML table (numbers right-aligned, units in
the header, a caption for provenance) in JupyterLab and in nbgrader's feedback page; ``print`` or a
terminal gets the same table as aligned plain text. No pandas needed.

Worked example::

    table([{"scheme": "int8-row", "ppl": 12.31, "Δppl": 0.4}], units={"ppl": "", "Δppl": "%"},
          formats={"Δppl": "+.2f"}, caption="SmolLM2-135M-Instruct, 4096 tokens")

gives a header ``scheme | ppl | Δppl (%)`` and the row ``int8-row | 12.31 | +0.40``.
"""

from __future__ import annotations

import html
import numbers
from dataclasses import dataclass, field


def _fmt(value, spec: str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return str(value)
    if spec:
        return format(value, spec)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    v = float(value)
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"


@dataclass
class Table:
    """Rows of named values; ``_repr_html_`` for notebooks, ``str`` for terminals."""

    columns: list[str]
    rows: list[list]
    units: dict = field(default_factory=dict)
    formats: dict = field(default_factory=dict)
    caption: str = ""

    def header(self, col: str) -> str:
        unit = self.units.get(col)
        return f"{col} ({unit})" if unit else col

    def cells(self) -> list[list[str]]:
        return [[_fmt(v, self.formats.get(c)) for c, v in zip(self.columns, row)] for row in self.rows]

    def _numeric(self, j: int) -> bool:
        return all(isinstance(r[j], numbers.Number) or r[j] is None for r in self.rows)

    def _repr_html_(self) -> str:
        align = ["right" if self._numeric(j) else "left" for j in range(len(self.columns))]
        head = "".join(f'<th style="text-align:{a}">{html.escape(self.header(c))}</th>'
                       for c, a in zip(self.columns, align))
        body = "".join("<tr>" + "".join(f'<td style="text-align:{a};font-variant-numeric:tabular-nums">'
                                        f"{html.escape(v)}</td>" for v, a in zip(row, align)) + "</tr>"
                       for row in self.cells())
        cap = f"<caption style='caption-side:bottom;text-align:left'>{html.escape(self.caption)}</caption>" \
            if self.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __str__(self) -> str:
        cells = self.cells()
        heads = [self.header(c) for c in self.columns]
        widths = [max([len(h)] + [len(r[j]) for r in cells]) for j, h in enumerate(heads)]
        just = [str.rjust if self._numeric(j) else str.ljust for j in range(len(heads))]
        lines = ["  ".join(j(h, w) for h, w, j in zip(heads, widths, just)),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(j(v, w) for v, w, j in zip(r, widths, just)) for r in cells]
        if self.caption:
            lines.append(self.caption)
        return "\n".join(lines)

    __repr__ = __str__


def table(rows, *, columns: list[str] | None = None, units: dict | None = None, formats: dict | None = None,
          caption: str = "") -> Table:
    """A ``Table`` from ``rows``: dicts (keys → columns, in first-seen order), dataclasses, or
    sequences (then ``columns`` names them). ``units``: column → unit shown in the header;
    ``formats``: column → format spec (``".2f"``, ``"+.1%"``…)."""
    rows = list(rows)
    dicts = []
    for r in rows:
        if isinstance(r, dict):
            dicts.append(r)
        elif hasattr(r, "__dataclass_fields__"):
            dicts.append({k: getattr(r, k) for k in r.__dataclass_fields__})
        elif columns is not None:
            if len(r) != len(columns):
                raise ValueError(f"table: a row has {len(r)} values but {len(columns)} columns were named")
            dicts.append(dict(zip(columns, r)))
        else:
            raise TypeError(f"table: rows must be dicts or dataclasses, or pass columns= for {type(r).__name__} rows")
    if columns is None:
        columns = []
        for d in dicts:
            columns += [k for k in d if k not in columns]
    unknown = set(units or {}) - set(columns)
    if unknown:
        raise ValueError(f"table: units for unknown columns {sorted(unknown)}; columns are {columns}")
    return Table(columns, [[d.get(c) for c in columns] for d in dicts], dict(units or {}), dict(formats or {}), caption)
