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
     "delimiter": ";", "encoding": "cp1252", "sheet": "Umsaetze",
     "skip_zero_amounts": true,                    # rows whose amount is zero are not records
     "record_type": {"column": 1, "values": ["010"]},  # only rows of these types are records
     "minor_units": 2}                              # amounts are written in cents: 25175 is 251.75

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

Rows that state a balance or a turnover ("SALDO INIZIALE", "Likutis pabaigai", "Anfangssaldo",
with no counterparty) are never records; with "skip_zero_amounts" neither are rows whose amount
is zero (kept by default: a forensic reading keeps every row). Fixed-layout exports
(LITAS-ESIS, many bank formats of record types) start each row with its type: with
"record_type" only rows whose numbered column holds one of "values" are records, and the
header, balance and trailer rows of other types are left out, whatever their width. Each row
left out is counted with its reason in the import's "skipped_rows"
(jobs.importing.rows.without_skipped).

"minor_units" (0 to 4, ISO 4217's largest exponent) says the amounts (or debits and credits)
are whole numbers of the currency's minor unit, as LITAS-ESIS and other fixed-layout exports
write them: with 2, "25175" is 251.75. It is stated, never guessed; a value with a decimal
part under it is an invalid amount (jobs.datatypes.fields.from_minor_units).

"date_fallback" names a second date column read where the date column is empty: a card
statement's pending payment has its operation date but no booking date yet (VTB's "Дата
обработки" beside "Дата операции"). It is detected when two columns are named as the date:
the better name is the date, the other its fallback.

"direction" names a column that says whether each unsigned amount is a debit or a credit
(D/C, S/H, Soll/Haben, Af/Bij, debit/credit); without "debit_values" its usual debit markers
are recognised. Such a column is also detected, by its header and its values, when every
amount is unsigned.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from jobs.errors import InputError

FIELDS = ("id", "date", "value_date", "date_fallback", "amount", "debit", "credit", "direction", "currency", "account",
          "counterparty", "description", "reference")
FINANCIAL = {"date", "amount", "debit", "credit"}
CANONICAL = {"id", "date", "amount", "currency", "account", "counterparty", "description", "reference"}
_RULES = {"constants", "day_first", "date_format", "decimal_separator", "thousands_separator", "sign",
          "default_currency", "header_row", "has_header", "delimiter", "encoding", "sheet", "debit_values",
          "skip_zero_amounts", "minor_units", "record_type"}
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
    skip_zero_amounts: bool = False
    minor_units: int | None = None
    record_type: dict | None = None  # {"column": 1-based number, "values": [types that are records]}

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
        for name in ("day_first", "has_header", "skip_zero_amounts"):
            if name in raw and not isinstance(raw[name], bool):
                raise InputError(f"mapping.{name} must be true or false")
        mapping.day_first = raw.get("day_first")
        mapping.has_header = raw.get("has_header", True)
        mapping.skip_zero_amounts = raw.get("skip_zero_amounts", False)
        mapping.minor_units = _minor_units(raw.get("minor_units"))
        mapping.record_type = _record_type(raw.get("record_type"))
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
                and not (key == "has_header" and value is True)
                and not (key == "skip_zero_amounts" and value is False)}

    @property
    def is_empty(self) -> bool:
        return not self.as_dict()

    def is_other_record_type(self, row: list[str]) -> str | None:
        """The type of a row that the mapping's "record_type" says is not a record, else None."""
        if self.record_type is None:
            return None
        position = self.record_type["column"] - 1
        kind = row[position].strip() if position < len(row) else ""
        return None if kind in self.record_type["values"] else kind

    def scaled(self, amount: Any) -> Any:
        """`amount` in the currency's major unit when the mapping says amounts are written in
        minor units ("minor_units"); unchanged otherwise, and when empty or None."""
        from jobs.datatypes.fields import from_minor_units

        return from_minor_units(amount, self.minor_units) if self.minor_units else amount

    def in_major_units(self, record: dict) -> dict:
        """`record` with its "amount" `scaled`; the same dict when there is nothing to scale."""
        if not self.minor_units or record.get("amount") in (None, ""):
            return record
        return {**record, "amount": self.scaled(record["amount"])}


def _minor_units(value: Any) -> int | None:
    """The mapping's "minor_units": None when not given, else a whole number from 0 to 4."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4:
        raise InputError("mapping.minor_units must be a whole number from 0 to 4: the decimals the amounts are "
                         "written without (2 when 25175 means 251.75)")
    return value


_WEAK_AMOUNT = {"value", "total"}
_WEAK_ACCOUNT = {"kontonummer"}  # the holder's account only when no counterparty column is named

# Two same-named columns that would both be read as one of these cannot be told apart: the
# upload is refused until a mapping names one. Others (ING's two "Währung") are resolved.
_MUST_BE_UNIQUE = {"id", "date", "value_date", "date_fallback", "amount", "debit", "credit"}


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
    if "date" in found_columns and "date" not in duplicated and "date_fallback" not in settled:
        # Two differently named date columns (a processing date and an operation date): the
        # better name is the date, the next one is read where it is empty (a pending payment).
        others = sorted((rank, position, name) for rank, position, name in candidates["date"]
                        if name != found_columns["date"])
        if others:
            found_columns["date_fallback"] = others[0][2]
    if "amount" in found_columns and "debit" in found_columns and "credit" in found_columns \
            and headers.normalize(headers.base_name(found_columns["amount"], header)) in _WEAK_AMOUNT:
        # "Value" or "Total" beside a debit and a credit column is a value date or a running
        # total (PostFinance's "Value"), not the amount.
        del found_columns["amount"]
        duplicated.pop("amount", None)
    if "account" in found_columns and "counterparty" in found_columns \
            and headers.normalize(headers.base_name(found_columns["account"], header)) in _WEAK_ACCOUNT:
        # A bare "Kontonummer" beside a payee column is the payee's account (older Sparkasse
        # exports: "Begünstigter/Zahlungspflichtiger;Kontonummer;BLZ"), not the holder's (issue 19).
        del found_columns["account"]
        duplicated.pop("account", None)
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
    if wanted.get("date_fallback") == wanted.get("date") or "date" not in wanted:
        wanted.pop("date_fallback", None)
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


# Reading a table without a header by what its columns hold (issue 19: Raiffeisen, easybank and
# ASN export no header row). Shapes only, checked on every sampled value of a column.
_DATE_SHAPES = (re.compile(r"^\d{4}([/.-])\d{1,2}\1\d{1,2}$"),
                re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{2}|\d{4})$"),
                re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"))
_AMOUNT_SHAPE = re.compile(r"^[+-]?[$€£¥]?\s?[+-]?(\d{1,3}([.,' ]\d{3})+|\d+)([.,]\d{1,2})?-?$")
_CENTS = re.compile(r"[.,]\d{2}-?$")
_IBAN_SHAPE = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$")
_ACCOUNT_DIGITS = re.compile(r"^\d{6,34}$")
GUESS_SHARE = 0.9  # of a column's non-empty sampled values that must have the shape


def _share(values: list[str], test) -> float:
    return sum(1 for value in values if test(value)) / len(values) if values else 0.0


def _is_date(value: str) -> bool:
    value = _TRAILING_TIME.sub("", value)  # "2019-07-06 00:00:00": a date with its time of day
    return any(shape.match(value) for shape in _DATE_SHAPES)


_TRAILING_TIME = re.compile(r"[ T]\d{1,2}:\d{2}(:\d{2})?$")


def _rough_number(value: str):
    """A value of an amount-shaped column as a Decimal, its decimal separator taken from where
    it stands (the last '.' or ',' followed by one or two digits); None if unreadable. Only for
    comparing columns with one another (`_is_running_balance`), never for reading amounts."""
    from decimal import Decimal, InvalidOperation

    text = value.strip().replace("\u00a0", "").replace(" ", "").replace("'", "")
    negative = text.startswith("-") or text.endswith("-")
    text = text.strip("+-$€£¥")
    decimals = re.search(r"[.,](\d{1,2})$", text)
    whole = re.sub(r"[.,]", "", text[:decimals.start()] if decimals else text)
    try:
        number = Decimal(f"{whole}.{decimals.group(1)}" if decimals else whole)
    except InvalidOperation:
        return None
    return -number if negative else number


def _is_running_balance(balance: list[str], amount: list[str]) -> bool:
    """Whether a column is the running balance of an amount column: from one row to the next
    it moves by that row's (or the next row's) amount, in either order of the rows (oldest or
    newest first, balance before or after the movement), on most rows."""
    pairs = [(_rough_number(b), _rough_number(a)) for b, a in zip(balance, amount, strict=False)]
    if len(pairs) < 3 or any(b is None or a is None for b, a in pairs):
        return False
    moves = sum(1 for i in range(1, len(pairs))
                if abs(pairs[i][0] - pairs[i - 1][0]) in (abs(pairs[i][1]), abs(pairs[i - 1][1])))
    return moves >= 0.6 * (len(pairs) - 1)


def _is_amount(value: str) -> bool:
    return bool(_AMOUNT_SHAPE.match(value.replace("\u00a0", " ")))


def _is_text(value: str) -> bool:
    return any(char.isalpha() for char in value) and not _IBAN_SHAPE.match(value)


def _pick_amount(amounts: list[int], rows: list[list[str]]) -> tuple[int, str]:
    """The amount among several amount-shaped columns, and why: not a column that is the running
    balance of another; then the one with both debits and credits (a balance is mostly of one
    sign); else the first."""
    if len(amounts) == 1:
        return amounts[0], ""
    cells = {i: [row[i].strip() if i < len(row) else "" for row in rows] for i in amounts}
    balances = {b for b in amounts for a in amounts if a != b and _is_running_balance(cells[b], cells[a])}
    left = [i for i in amounts if i not in balances] or amounts
    signed = [i for i in left if any(v.startswith("-") or v.endswith("-") for v in cells[i] if v)
              and any(not (v.startswith("-") or v.endswith("-")) for v in cells[i] if v)]
    why = ", not the running balance beside it" if balances and len(left) == 1 else ""
    if len(left) == 1:
        return left[0], why
    if len(signed) == 1:
        return signed[0], ", the only such column with both debits and credits"
    return left[0], ", the first such column"


def guess_columns(rows: list[list[str]]) -> tuple[dict[str, int], dict[str, str]]:
    """Field -> 0-based position for a table without a header row, from what its columns hold,
    and for each field found how it was guessed (shown with the import).

    Guarantees: a field is guessed only when at least GUESS_SHARE of its column's non-empty
    sampled values have its shape, and nothing is guessed unless both a date and an amount
    column are found (the caller then reads the table as it would with a mapping; without
    them it is refused with the file-level diagnosis as before). The rules:
    - date: the first column of dates (a later one is the value date);
    - amount: numbers with two decimals or a sign, not integers (ids, codes); of several, not
      the running balance of another (`_pick_amount`), then the one with both signs, else the
      first;
    - currency: ISO 4217 codes, the column nearest the amount (a balance has its own);
    - account: the same IBAN or long number on every row (the holder's; a counterparty's
      account changes from row to row and is not read);
    - description: the text column with the longest values; counterparty: another text column
      of names (no digits in most values) before it, if there is exactly one."""
    from jobs.datatypes.fields import ISO_4217

    width = max((len(row) for row in rows), default=0)
    columns = [[row[i].strip() for row in rows if i < len(row) and row[i].strip()] for i in range(width)]
    kinds: dict[int, str] = {}
    for i, values in enumerate(columns):
        if not values:
            continue
        if _share(values, _is_date) >= GUESS_SHARE:
            kinds[i] = "date"
        elif _share(values, _is_amount) >= GUESS_SHARE and _share(
                values, lambda v: bool(_CENTS.search(v)) or v[0] in "+-") >= 0.5:
            kinds[i] = "amount"
        elif all(v.upper() == v and v in ISO_4217 for v in values):
            kinds[i] = "currency"
        elif len(set(values)) == 1 and len(values) == len(rows) and (
                _IBAN_SHAPE.match(values[0].replace(" ", "")) or _ACCOUNT_DIGITS.match(values[0])):
            kinds[i] = "account"
        elif _share(values, _is_text) >= GUESS_SHARE and max(map(len, values)) > 4 and len(set(values)) > 1:
            kinds[i] = "text"
    dates = [i for i, kind in kinds.items() if kind == "date"]
    amounts = [i for i, kind in kinds.items() if kind == "amount"]
    if not dates or not amounts:
        return {}, {}
    positions = {"date": dates[0]}
    how = {"date": f"column {dates[0] + 1}: every value is a date (the first such column)"}
    if len(dates) > 1:
        positions["value_date"] = dates[1]
        how["value_date"] = f"column {dates[1] + 1}: the second column of dates"
    amount, why = _pick_amount(amounts, rows)
    positions["amount"] = amount
    how["amount"] = f"column {amount + 1}: numbers with decimals" + why
    currencies = sorted((i for i, kind in kinds.items() if kind == "currency"), key=lambda i: abs(i - amount))
    if currencies:
        positions["currency"] = currencies[0]
        how["currency"] = f"column {currencies[0] + 1}: ISO 4217 codes, the nearest such column to the amount"
    accounts = [i for i, kind in kinds.items() if kind == "account"]
    if len(accounts) == 1:
        positions["account"] = accounts[0]
        how["account"] = f"column {accounts[0] + 1}: the same account number on every row"
    texts = [i for i, kind in kinds.items() if kind == "text"]
    if texts:
        description = max(texts, key=lambda i: (sum(map(len, columns[i])) / len(rows), -i))
        positions["description"] = description
        how["description"] = f"column {description + 1}: the text column with the longest values"
        names = [i for i in texts if i < description
                 and _share(columns[i], lambda v: not any(c.isdigit() for c in v)) >= 0.5]
        if len(names) == 1:
            positions["counterparty"] = names[0]
            how["counterparty"] = f"column {names[0] + 1}: the one column of names before the description"
    return positions, how


def _record_type(raw: Any) -> dict | None:
    if raw is None:
        return None
    problem = 'mapping.record_type must be {"column": <1-based number>, "values": ["<type of a record>", ...]}'
    if not isinstance(raw, dict) or set(raw) != {"column", "values"}:
        raise InputError(problem)
    column, values = raw["column"], raw["values"]
    if isinstance(column, bool) or not isinstance(column, int) or column < 1:
        raise InputError(problem)
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise InputError(problem)
    return {"column": column, "values": [v.strip() for v in values]}
