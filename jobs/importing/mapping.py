"""Column mappings: which source column (or constant) feeds which Zenith field, and how to
read its values. Given explicitly (API `options.mapping`, CLI `--map` / `--mapping`, the upload
page, or a saved mapping by name), or detected from the header and the whole columns.

A mapping in JSON:

    {"columns": {"date": "Buchungstag", "amount": "Betrag", "description": "Verwendungszweck"},
     "constants": {"currency": "EUR"},
     "debit": "Soll", "credit": "Haben",          # instead of one signed amount column
     "day_first": true, "date_format": "%d.%m.%y",  # either; date_format wins
     "decimal_separator": ",", "thousands_separator": ".",
     "sign": "inverted",                            # sign: amounts are debits-positive
     "direction": "Af Bij", "debit_values": ["Af"], # unsigned amounts signed by a debit/credit column
     "default_currency": "EUR", "header_row": 5, "has_header": true,
     "delimiter": ";", "encoding": "cp1252", "sheet": "Umsaetze"}

Value rules: "decimal_separator" is "." or ","; "thousands_separator" is ",", ".", " " (a
space, also matching no-break spaces), "'" (Swiss) or "" (amounts have no grouping), and must
differ from the decimal separator; a "." or "," thousands separator implies the other as the
decimal one. Without them both are decided from the whole column. Digit groups are checked
either way: "1,2,3" or "1 234,56" read with a decimal point is an invalid amount, not a guess.

In "columns", a value may be a header name or, for a file without a header, a 1-based
column number. A name the header repeats is read as "Name", "Name (2)", ... (the detected
"columns" of a preview show them); a repeated date, amount or id column must be mapped so.
Keys outside "columns" that name Zenith fields are read as columns too, so
`--map date=Buchungstag` and {"date": "Buchungstag"} both work.

"direction" names a column that says whether each unsigned amount is a debit or a credit
(D/C, S/H, Soll/Haben, Af/Bij, debit/credit); without "debit_values" its usual debit markers
are recognised. Such a column is also detected, by its header and its values, when every
amount is unsigned.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jobs.errors import InputError

FIELDS = ("id", "date", "value_date", "amount", "debit", "credit", "direction", "currency", "account",
          "counterparty", "description", "reference")
FINANCIAL = {"date", "amount", "debit", "credit"}
CANONICAL = {"id", "date", "amount", "currency", "account", "counterparty", "description", "reference"}
_RULES = {"constants", "day_first", "date_format", "decimal_separator", "thousands_separator", "sign",
          "default_currency", "header_row", "has_header", "delimiter", "encoding", "sheet", "debit_values"}
THOUSANDS_SEPARATORS = (",", ".", " ", "'", "")


@dataclasses.dataclass
class Mapping:
    columns: dict[str, str | int] = dataclasses.field(default_factory=dict)
    constants: dict[str, str] = dataclasses.field(default_factory=dict)
    day_first: bool | None = None
    date_format: str | None = None
    decimal_separator: str | None = None
    thousands_separator: str | None = None
    sign: str = "normal"
    default_currency: str | None = None
    header_row: int | None = None
    has_header: bool = True
    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    debit_values: list[str] | None = None

    @classmethod
    def parse(cls, raw: Any) -> Mapping:
        """From the JSON users give; every mistake is an InputError naming it."""
        if raw in (None, "", {}):
            return cls()
        if not isinstance(raw, dict):
            raise InputError("the mapping must be a JSON object")
        if not isinstance(raw.get("columns") or {}, dict):
            raise InputError("mapping.columns must be an object of field -> column")
        # Text rules must be text: anything else was a TypeError deep in a reader, a 500.
        for name in ("date_format", "default_currency", "encoding", "sheet"):
            if raw.get(name) not in (None, "") and not isinstance(raw[name], str):
                raise InputError(f"mapping.{name} must be a string")
        columns = dict(raw.get("columns") or {})
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
        thousands = raw.get("thousands_separator")
        if thousands is not None:
            if thousands not in THOUSANDS_SEPARATORS:
                raise InputError("mapping.thousands_separator must be one of \",\" \".\" \" \" \"'\" or \"\" (none)")
            if thousands and thousands == mapping.decimal_separator:
                raise InputError("mapping.thousands_separator must differ from mapping.decimal_separator")
        mapping.thousands_separator = thousands
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
        debit_values = raw.get("debit_values")
        if debit_values is not None:
            if (not isinstance(debit_values, list) or not debit_values
                    or not all(isinstance(v, str) and v.strip() for v in debit_values)):
                raise InputError("mapping.debit_values must be a list of the texts that mark a debit, e.g. [\"D\"]")
            if "direction" not in columns:
                raise InputError("mapping.debit_values needs \"direction\": the column holding those texts")
            mapping.debit_values = [v.strip() for v in debit_values]
        return mapping

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        return {key: value for key, value in data.items()
                if (value not in (None, {}, "") or (key == "thousands_separator" and value == ""))
                and not (key == "sign" and value == "normal")
                and not (key == "has_header" and value is True)}

    @property
    def is_empty(self) -> bool:
        return not self.as_dict()


_WEAK_AMOUNT = {"value", "total"}

# Two same-named columns that would both be read as one of these cannot be told apart: the
# upload is refused until a mapping names one. Others (ING's two "Währung") are resolved.
_MUST_BE_UNIQUE = {"id", "date", "value_date", "amount", "debit", "credit"}


class DuplicateColumns(InputError):
    def __init__(self, duplicated: dict[str, list[str]]):
        self.duplicated = duplicated
        parts = [f"{field} could be any of {', '.join(repr(n) for n in names)}" for field, names in duplicated.items()]
        super().__init__(f"duplicate column names in the header: {'; '.join(parts)}; map the field to one of them")


def detect_columns(header: list[str], settled: set[str] | frozenset[str] = frozenset(),
                   amount_column: str | None = None) -> dict[str, str]:
    """Field -> header name, from the synonyms: for each field the column with its best name
    (first such column on a tie). A field named by two columns of the same name (renamed
    'X' and 'X (2)' when read) takes the one right after the amount, else right before it,
    else the first; for id, dates and amounts that raises DuplicateColumns instead, unless the
    field is in `settled` (an explicit mapping names its column). `amount_column` is the amount
    the mapping names, if it does."""
    from jobs.importing import headers

    candidates: dict[str, list[tuple[int, int, str]]] = {}
    for position, name in enumerate(header):
        found = headers.match(headers.base_name(name, header))
        if found:
            field, rank = found
            candidates.setdefault(field, []).append((rank, position, name))
    found_columns: dict[str, str] = {}
    duplicated: dict[str, list[str]] = {}
    for field, options in candidates.items():
        best_rank = min(rank for rank, _, _ in options)
        best = [(position, name) for rank, position, name in options if rank == best_rank]
        first_base = headers.base_name(best[0][1], header)
        twins = [(position, name) for position, name in best if headers.base_name(name, header) == first_base]
        if len(twins) > 1:
            duplicated[field] = [name for _, name in twins]
        found_columns[field] = best[0][1]
    if "amount" in found_columns and "debit" in found_columns and "credit" in found_columns \
            and headers.normalize(headers.base_name(found_columns["amount"], header)) in _WEAK_AMOUNT:
        # "Value" or "Total" beside a debit and a credit column is a value date or a running
        # total (PostFinance's "Value"), not the amount.
        del found_columns["amount"]
        duplicated.pop("amount", None)
    if "amount" in found_columns and ("debit" in found_columns or "credit" in found_columns):
        # "Betrag" next to "Soll"/"Haben": the signed amount is enough
        for field in ("debit", "credit"):
            found_columns.pop(field, None)
            duplicated.pop(field, None)
    if "debit" not in found_columns and "credit" not in found_columns:
        # A debit/credit indicator beside one amount column: used only if its values and the
        # amounts' lack of signs say so (jobs.importing.rows.decide).
        taken = set(found_columns.values())
        ranked = [(rank, position, name) for position, name in enumerate(header) if name not in taken
                  and (rank := headers.direction_rank(headers.base_name(name, header))) is not None]
        if ranked:
            found_columns["direction"] = min(ranked)[2]
    money = amount_column if amount_column in header else found_columns.get("amount")
    for field, names in list(duplicated.items()):
        if field in _MUST_BE_UNIQUE and field not in settled:
            continue
        if money is not None:
            at = header.index(money)
            for neighbour in (at + 1, at - 1):
                if 0 <= neighbour < len(header) and header[neighbour] in names:
                    found_columns[field] = header[neighbour]
                    break
        del duplicated[field]
    if duplicated:
        raise DuplicateColumns(duplicated)
    return found_columns


def resolve(mapping: Mapping, header: list[str] | None) -> dict[str, int]:
    """Field -> 0-based position in a row."""
    settled = set(mapping.columns)
    if settled & {"debit", "credit"}:
        settled.add("amount")
    if "amount" in settled:
        settled |= {"debit", "credit"}
    anchor = mapping.columns.get("amount")
    detected = detect_columns(header, settled, anchor if isinstance(anchor, str) else None) if header else {}
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
