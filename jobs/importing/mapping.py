"""Column mappings: which source column (or constant) feeds which Zenith field, and how to
read its values. Given explicitly (API `options.mapping`, CLI `--map` / `--mapping`, the upload
page, or a saved mapping by name), or detected from the header and the whole columns.

A mapping in JSON:

    {"columns": {"date": "Buchungstag", "amount": "Betrag", "description": "Verwendungszweck"},
     "constants": {"currency": "EUR"},
     "debit": "Soll", "credit": "Haben",          # instead of one signed amount column
     "day_first": true, "date_format": "%d.%m.%y",  # either; date_format wins
     "decimal_separator": ",", "sign": "inverted",  # sign: amounts are debits-positive
     "default_currency": "EUR", "header_row": 5, "has_header": true,
     "delimiter": ";", "encoding": "cp1252", "sheet": "Umsaetze"}

In "columns", a value may be a header name or, for a file without a header, a 1-based
column number. Keys outside "columns" that name Zenith fields are read as columns too, so
`--map date=Buchungstag` and {"date": "Buchungstag"} both work.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..readers import InputError

FIELDS = ("id", "date", "value_date", "amount", "debit", "credit", "currency", "account", "counterparty",
          "description", "reference")
FINANCIAL = {"date", "amount", "debit", "credit"}
CANONICAL = {"id", "date", "amount", "currency", "account", "counterparty", "description", "reference"}
_RULES = {"constants", "day_first", "date_format", "decimal_separator", "sign", "default_currency", "header_row",
          "has_header", "delimiter", "encoding", "sheet"}


@dataclasses.dataclass
class Mapping:
    columns: dict[str, str | int] = dataclasses.field(default_factory=dict)
    constants: dict[str, str] = dataclasses.field(default_factory=dict)
    day_first: bool | None = None
    date_format: str | None = None
    decimal_separator: str | None = None
    sign: str = "normal"
    default_currency: str | None = None
    header_row: int | None = None
    has_header: bool = True
    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> Mapping:
        """From the JSON users give; every mistake is an InputError naming it."""
        if raw in (None, "", {}):
            return cls()
        if not isinstance(raw, dict):
            raise InputError("the mapping must be a JSON object")
        columns = dict(raw.get("columns") or {})
        if not isinstance(columns, dict):
            raise InputError("mapping.columns must be an object of field -> column")
        for key, value in raw.items():
            if key in FIELDS:
                columns[key] = value
            elif key not in _RULES and key != "columns":
                raise InputError(f"unknown mapping key {key!r}; fields are {', '.join(FIELDS)}")
        for field, column in columns.items():
            if field not in FIELDS:
                raise InputError(f"unknown field {field!r} in the mapping; fields are {', '.join(FIELDS)}")
            if isinstance(column, bool) or not isinstance(column, (str, int)) or column in ("", 0):
                raise InputError(f"mapping for {field!r} must be a column name or a 1-based column number")
        if "amount" in columns and ("debit" in columns or "credit" in columns):
            raise InputError("map either 'amount' or 'debit' and 'credit', not both")
        constants = raw.get("constants") or {}
        if not isinstance(constants, dict) or any(k not in FIELDS for k in constants):
            raise InputError(f"mapping.constants must map fields ({', '.join(FIELDS)}) to values")
        mapping = cls(columns=columns, constants={k: str(v) for k, v in constants.items()})
        for name in ("day_first", "has_header"):
            if name in raw and not isinstance(raw[name], bool):
                raise InputError(f"mapping.{name} must be true or false")
        mapping.day_first = raw.get("day_first")
        mapping.has_header = raw.get("has_header", True)
        mapping.date_format = raw.get("date_format") or None
        if raw.get("decimal_separator") not in (None, ".", ","):
            raise InputError("mapping.decimal_separator must be \".\" or \",\"")
        mapping.decimal_separator = raw.get("decimal_separator")
        if raw.get("sign", "normal") not in ("normal", "inverted"):
            raise InputError("mapping.sign must be \"normal\" or \"inverted\"")
        mapping.sign = raw.get("sign", "normal")
        mapping.default_currency = raw.get("default_currency") or None
        if raw.get("header_row") is not None and (not isinstance(raw["header_row"], int) or raw["header_row"] < 1):
            raise InputError("mapping.header_row must be a line number from 1")
        mapping.header_row = raw.get("header_row")
        if raw.get("delimiter") not in (None, ",", ";", "\t", "|"):
            raise InputError("mapping.delimiter must be one of , ; | or a tab")
        mapping.delimiter = raw.get("delimiter")
        mapping.encoding = raw.get("encoding") or None
        if mapping.encoding:
            import codecs

            try:
                codecs.lookup(mapping.encoding)
            except LookupError:
                raise InputError(f"unknown encoding {mapping.encoding!r}") from None
        mapping.sheet = raw.get("sheet") or None
        return mapping

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        return {key: value for key, value in data.items()
                if value not in (None, {}, "") and not (key == "sign" and value == "normal")
                and not (key == "has_header" and value is True)}

    @property
    def is_empty(self) -> bool:
        return not self.as_dict()


def detect_columns(header: list[str]) -> dict[str, str]:
    """Field -> header name, from the synonyms; the first column naming a field wins."""
    from . import headers

    found: dict[str, str] = {}
    for name in header:
        field = headers.field_for(name)
        if field and field not in found:
            found[field] = name
    if "amount" in found and ("debit" in found or "credit" in found):
        # "Betrag" next to "Soll"/"Haben": the signed amount is enough
        found.pop("debit", None)
        found.pop("credit", None)
    return found


def resolve(mapping: Mapping, header: list[str] | None) -> dict[str, int]:
    """Field -> 0-based position in a row."""
    detected = detect_columns(header) if header else {}
    wanted = {**detected, **mapping.columns} if header else dict(mapping.columns)
    if mapping.columns and ("debit" in mapping.columns or "credit" in mapping.columns):
        wanted.pop("amount", None)
    if mapping.columns.get("amount"):
        wanted.pop("debit", None)
        wanted.pop("credit", None)
    positions: dict[str, int] = {}
    for field, column in wanted.items():
        if isinstance(column, int) or (isinstance(column, str) and column.isdigit() and not header):
            index = int(column) - 1
            if header is not None and index >= len(header) or index < 0:
                raise InputError(f"mapping for {field!r}: there is no column {column}")
            positions[field] = index
        elif header is None:
            raise InputError(f"the file has no header row, so map {field!r} to a column number")
        elif column in header:
            positions[field] = header.index(column)
        else:
            raise InputError(f"mapping for {field!r}: no column named {column!r}; the columns are "
                             f"{', '.join(header)}")
    return positions
