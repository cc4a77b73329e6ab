"""Rows into records: how each column of a table is decided and read (canonical, mapped and
pass-through modes), one row at a time, the same on the upload and on a worker."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jobs.datatypes.fields import as_written
from jobs.errors import InputError, TooManyItems
from jobs.importing import sources
from jobs.importing.headers import direction_of, normalize
from jobs.importing.identity import IdDeriver
from jobs.importing.mapping import Mapping
from jobs.importing.values import AmbiguousColumn, DateColumn, NumberColumn, to_decimal, to_iso_date

DECIDE_ROWS = 1000  # canonical files: rows read to decide date and amount columns before the first record
DECIDE_CHARS = 16 << 20  # ... or fewer, when they hold more text than this (long lines)


def column_deciders(table: sources.Table, positions: dict[str, int]) -> dict[str, DateColumn | NumberColumn]:
    columns: dict[str, DateColumn | NumberColumn] = {}
    for field, pos in positions.items():
        if field in ("date", "value_date", "date_fallback"):
            columns[field] = DateColumn(_label(table, pos))
        elif field in ("amount", "debit", "credit"):
            columns[field] = NumberColumn(_label(table, pos))
        elif field == "direction":
            columns[field] = DirectionColumn(_label(table, pos))
    return columns


@dataclasses.dataclass
class DirectionColumn:
    """A column that may say debit or credit for unsigned amounts (issue 19): 'D'/'C',
    'S'/'H', 'Soll'/'Haben', 'Af'/'Bij', 'debit'/'credit'. It signs the amounts only when
    every value in it is such a marker and no amount carries a sign of its own."""

    name: str
    debits: int = 0
    credits: int = 0
    others: int = 0
    example: str = ""

    def observe(self, value: str) -> None:
        text = (value or "").strip()
        if not text:
            return
        way = direction_of(text)
        if way < 0:
            self.debits += 1
        elif way > 0:
            self.credits += 1
        else:
            self.others += 1
            self.example = self.example or text


def observe(columns: dict[str, DateColumn | NumberColumn], rows: Iterable[list[str]], positions: dict[str, int],
             dates: bool = True, max_rows: int | None = None) -> None:
    """The first pass: each date and amount column read as a whole. More than `max_rows` rows
    is TooManyItems at once (a preview would otherwise read a file of any length here)."""
    watched = [(positions[field], column) for field, column in columns.items()
               if dates or not isinstance(column, DateColumn)]
    for count, row in enumerate(rows, 1):
        for position, column in watched:
            if position < len(row):
                column.observe(row[position])
        if max_rows is not None and count > max_rows:
            raise TooManyItems(max_rows)


def decide(columns: dict[str, DateColumn | NumberColumn], positions: dict[str, int], spec: Mapping,
           header_currencies: dict[str, str | None] | None = None, preamble: dict | None = None) -> dict:
    """Each column's reading from what `observe` saw; an undecidable one is an InputError.
    `header_currencies`: the currency each amount column's header names ("Amount (EUR)");
    `preamble`: what the lines above the header state (sources.read_preamble)."""
    header_currencies = header_currencies or {}
    preamble = preamble or {}
    try:
        date_decisions = _decide_dates(columns, spec)
        number_decisions = {field: col.decide(spec.decimal_separator, spec.thousands_separator)
                            for field, col in columns.items() if isinstance(col, NumberColumn)}
    except AmbiguousColumn as exc:
        raise InputError(str(exc)) from None
    symbols = sorted({code for decision in number_decisions.values() for code in decision["currency_symbols"]})
    detected: dict[str, Any] = {"dates": list(date_decisions.values()), "numbers": list(number_decisions.values())}
    currency, source = None, ""
    if "currency" not in positions:
        named = sorted({code for code in header_currencies.values() if code})
        if len(named) == 1:
            currency, source = named[0], "the amount column's header"
        elif len(symbols) == 1:
            currency, source = symbols[0], "the amounts' currency sign"
        elif preamble.get("currency"):
            currency, source = preamble["currency"], "the lines above the header"
    if currency:
        detected["currency"] = f"{currency} (from {source})"
    if "id" not in positions:
        detected["id"] = ("derived from each row's own text in the file and its occurrence, so a re-upload, "
                          "with any mapping, gives the same ids")
    if preamble.get("account") and "account" not in positions:
        detected["account"] = f"{preamble['account']} (from the lines above the header)"
    direction = None
    column = columns.get("direction")
    if isinstance(column, DirectionColumn):
        amounts = [col for field, col in columns.items() if field == "amount" and isinstance(col, NumberColumn)]
        given = spec.debit_values is not None or "direction" in spec.columns
        if given or (column.debits and not column.others and amounts and not any(a.negatives for a in amounts)):
            direction = {"column": column.name, "debit_values": sorted(spec.debit_values) if spec.debit_values
                         is not None else None}
            detected["sign"] = (f"from column '{column.name}': amounts are unsigned and "
                                + (f"{', '.join(spec.debit_values)} mark debits" if spec.debit_values is not None
                                   else "its debit markers (D, S, Soll, Af, debit, ...) make them negative"))
    if spec.sign == "inverted":
        detected["sign"] = "inverted (positive amounts are debits)"
    return {"dates": date_decisions, "numbers": number_decisions, "currency": currency,
            "direction": direction, "preamble": preamble, "detected": detected}


def _decide_dates(columns: dict[str, DateColumn | NumberColumn], spec: Mapping) -> dict[str, dict]:
    """Each date column's reading. A value-date column whose dates all fit both orders
    (01/08/18 throughout) takes the order that the booking-date column shows: one export writes
    its dates one way (Poste Italiane's "Valuta" beside "Data"). Otherwise AmbiguousColumn."""
    decisions: dict[str, dict] = {}
    dated = sorted(((field, col) for field, col in columns.items() if isinstance(col, DateColumn)),
                   key=lambda item: item[0] != "date")
    for field, col in dated:
        if spec.date_format:
            decisions[field] = {"column": col.name, "format": spec.date_format}
            continue
        try:
            decisions[field] = col.decide(spec.day_first)
        except AmbiguousColumn:
            booking = decisions.get("date")
            if field == "date" or not booking or booking.get("day_first") is None:
                if field == "date_fallback":
                    continue  # detected, not asked for: the date column is read alone
                raise
            decisions[field] = {**col.decide(booking["day_first"]), "order_from": booking["column"]}
    return decisions


def decide_canonical(first: sources.Table, table: Callable[[], sources.Table], positions: dict[str, int],
                      hints: Mapping, max_rows: int | None = None) -> tuple[Iterator[list[str]], dict]:
    """A canonical file's date and amount columns decided from its first DECIDE_ROWS rows, so
    the file is read once; only when those rows cannot decide is the whole column read (and
    the file read again for its records) before refusing."""
    columns = column_deciders(first, positions)
    head, held, ended = [], 0, True
    for row in first.rows:
        head.append(row)
        held += sum(map(len, row))
        if len(head) >= DECIDE_ROWS or held > DECIDE_CHARS:
            ended = False
            break
    observe(columns, head, positions, dates=not hints.date_format)
    try:
        return itertools.chain(head, first.rows), decide(columns, positions, hints)
    except InputError:
        if ended:
            raise
    observe(columns, first.rows, positions, dates=not hints.date_format,
            max_rows=None if max_rows is None else max_rows - len(head))
    return table().rows, decide(columns, positions, hints)


# What a bank writes in the description of a row that states a balance or a turnover rather
# than a movement (compared normalised: jobs.importing.headers.normalize). Whole phrases: a
# description that merely mentions a balance ("Saldo-Ausgleich Kreditkarte") is a movement.
BALANCE_PHRASES = frozenset(normalize(phrase) for phrase in (
    "opening balance", "closing balance", "balance brought forward", "balance carried forward", "balance",
    "starting balance", "ending balance", "turnover", "total",
    "anfangssaldo", "endsaldo", "saldo", "alter kontostand", "neuer kontostand", "kontostand",
    "saldo iniziale", "saldo finale", "saldo contabile", "saldo disponibile",
    "solde initial", "solde final", "solde", "ancien solde", "nouveau solde",
    "saldo inicial", "saldo final", "saldo anterior",
    "beginsaldo", "eindsaldo", "openingssaldo", "slotsaldo",
    "likutis pradziai", "likutis pabaigai", "likutis", "apyvarta",
    "входящий остаток", "исходящий остаток", "остаток", "обороты",
    # followed by a date: "Kontostand am 28.02.2026", "Saldo al 31/01/2018"
    "kontostand am", "saldo am", "saldo al", "solde au", "balance as at", "balance as of", "balance on",
    # LITAS-ESIS (Lithuanian banks' exchange format) record codes: opening and closing balance
    "likutispr", "likutispb",
))


def balance_reason(row: list[str], positions: dict[str, int]) -> str | None:
    """Why a row is an opening/closing balance or turnover line rather than a movement, or None.

    Guarantees: only a row whose description (any cell when it has none) is a balance phrase,
    alone or followed by digits only (a date, an amount), and whose counterparty column, if
    any, is empty; such a row is never read as a transaction, and the caller counts it with this reason."""
    if "counterparty" in positions and positions["counterparty"] < len(row) \
            and row[positions["counterparty"]].strip():
        return None
    described = positions.get("description")
    texts = [row[described]] if described is not None and described < len(row) and row[described].strip() else row
    for text in texts:
        # Runs for every row of a file: most texts are passed over without being normalised,
        # by their length (a movement's text is longer than any phrase with its date) or their
        # first letter.
        if not text or len(text) > 48 or text.lstrip(" |*-")[:1].lower() not in _BALANCE_INITIALS:
            continue
        # the phrase alone, or followed by digits only (a date, an amount)
        if normalize(text).rstrip("0123456789") in BALANCE_PHRASES:
            return f"a balance or turnover line ('{text.strip()}'), not a movement"
    return None


_BALANCE_INITIALS = frozenset(phrase[0] for phrase in BALANCE_PHRASES)


def zero_reason(row: list[str], positions: dict[str, int]) -> str | None:
    """'the amount is zero' when the row's amount (or its debit and credit) holds digits that
    are all zeros ("0,00", "-0.00", "0"), else None. Decidable before the number convention
    is: no separator turns zeros into anything else."""
    cells = [row[positions[f]] for f in ("amount", "debit", "credit") if f in positions and positions[f] < len(row)]
    digits = "".join(ch for cell in cells for ch in cell if ch.isdigit())
    return "the amount is zero (the mapping's \"skip_zero_amounts\")" if digits and not digits.strip("0") else None


@dataclasses.dataclass
class SkippedRows:
    """Rows of a table that are not records, counted with their reasons, so that nothing is
    dropped silently: the import details and the preview say how many and why."""

    count: int = 0
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    examples: list[str] = dataclasses.field(default_factory=list)
    # Date columns still read on a skipped row: a balance line's date is written the way the
    # column's dates are, and may be what decides their order (31/12/17 among 01/08/18).
    dates: list[tuple[int, DateColumn]] = dataclasses.field(default_factory=list)
    repaired: int = 0
    repaired_examples: list[str] = dataclasses.field(default_factory=list)

    def add(self, reason: str, row: list[str] | None = None) -> None:
        if row is not None:
            for position, column in self.dates:
                if position < len(row):
                    column.observe(row[position])
        self.count += 1
        kind = reason.split(" (", 1)[0]
        self.reasons[kind] = self.reasons.get(kind, 0) + 1
        if len(self.examples) < 5:
            self.examples.append(reason)

    def as_dict(self) -> dict:
        return {"count": self.count, "reasons": dict(self.reasons), "examples": list(self.examples)}

    def add_repaired(self, note: str) -> None:
        """A row of another width than the header that was read (sources.fit_row), with how."""
        self.repaired += 1
        if len(self.repaired_examples) < 5:
            self.repaired_examples.append(note)

    def repaired_dict(self) -> dict:
        return {"count": self.repaired, "examples": list(self.repaired_examples)}


def without_skipped(rows: Iterable[list[str]], positions: dict[str, int], spec: Mapping,
                    skipped: SkippedRows | None = None) -> Iterator[list[str]]:
    """The rows that are records: balance and turnover lines left out, and zero amounts too
    when the mapping says "skip_zero_amounts"; each one left out is counted in `skipped`.
    Both passes over a table use it, so they agree on which rows are records."""
    zeros, typed = spec.skip_zero_amounts, spec.record_type is not None
    for row in rows:
        if typed:
            kind = spec.is_other_record_type(row)
            if kind is not None:
                # not a movement at all (a file header, balance or trailer record): its dates
                # say nothing about how the movements' are written
                if skipped is not None:
                    skipped.add(f"record type {kind!r} (the mapping's \"record_type\")")
                continue
        if isinstance(row, sources.BadRow):
            yield row
            continue
        if skipped is not None and row.__class__ is sources.RepairedRow:
            skipped.add_repaired(row.note)
        reason = balance_reason(row, positions) or (zero_reason(row, positions) if zeros else None)
        if reason is None:
            yield row
        elif skipped is not None:
            skipped.add(reason, row)


@dataclasses.dataclass
class RowForm:
    """How a canonical file's rows become records: every column kept, the decided date and
    amount columns written as ISO dates and plain decimals, the currency (from the amounts'
    sign) appended when the file has no currency column, and an id derived when it has no id
    column. Without a derived id it is plain data (`as_dict`), stored with the fast path's
    payloads (jobs.importing.blocks) so that a worker writes rows exactly as the import would."""

    header: list[str]
    dates: list[tuple[int, dict]]
    amounts: list[tuple[int, dict]]
    currency: str | None
    derive: Callable[[Any], str] | None = None

    @property
    def keys(self) -> list[str]:
        return list(self.header) + (["currency"] if self.currency else []) + (["id"] if self.derive else [])

    def as_dict(self) -> dict:
        if self.derive is not None:
            raise ValueError("a form that derives ids depends on the whole file and cannot be stored")
        return {"header": self.header, "dates": self.dates, "amounts": self.amounts, "currency": self.currency}

    @classmethod
    def from_dict(cls, data: dict) -> RowForm:
        return cls(data["header"], [tuple(d) for d in data["dates"]], [tuple(a) for a in data["amounts"]],
                   data["currency"])

    def rows(self, rows: Iterable[list[str]]) -> Iterator[list | dict]:
        """Records in `keys` order; a row of another width than the header comes out as its
        record (a dict)."""
        header, dates, amounts, currency, derive = self.header, self.dates, self.amounts, self.currency, self.derive
        # A "currency" header that is not the currency column keeps its values unless blank,
        # which only a record can say row by row.
        width = -1 if currency and "currency" in header else len(header)
        # Runs once per record of a million-row upload: only the decided date and amount
        # columns are touched, and no dict is built for a row of the header's width.
        for row in rows:
            if len(row) != width or row.__class__ is not list:
                yield _canonical_record(header, row, dates, amounts, currency, derive)
                continue
            identity = derive(row) if derive is not None else None  # from the row as written
            for i, rule in dates:
                value = row[i]
                # ISO already (the usual case here): as written, for the handler to check
                if not (_ISO_DAY.match(value) and not rule.get("format")):
                    row[i] = to_iso_date(value, rule.get("day_first"), rule.get("format"))
            for i, rule in amounts:
                value = row[i]
                if not (_PLAIN_AMOUNT.match(value) and rule["decimal_separator"] != ","):
                    row[i] = to_decimal(value, rule["decimal_separator"], rule.get("thousands_separator")) or ""
            if currency:
                row.append(currency)
            if identity is not None:
                row.append(identity)
            yield row


def row_form(header: list[str], positions: dict[str, int], decisions: dict) -> RowForm:
    return RowForm(list(header), [(positions[field], rule) for field, rule in decisions["dates"].items()],
                   [(positions[field], rule) for field, rule in decisions["numbers"].items()],
                   decisions["currency"], IdDeriver() if "id" not in positions else None)


def _canonical_record(header: list[str], row: list[str], dates: list, amounts: list, currency: str | None,
                      derive: Callable[[Any], str] | None) -> dict:
    """`RowForm.rows` for a row narrower or wider than the header: its record as a dict."""
    identity = derive(row) if derive is not None else None
    record: dict[str, Any] = dict(zip(header, row, strict=False))
    if isinstance(row, sources.BadRow):
        return _unreadable(row, identity or record.get("id", ""))
    for i, rule in dates:
        if i < len(row) and not (_ISO_DAY.match(row[i]) and not rule.get("format")):
            record[header[i]] = to_iso_date(row[i], rule.get("day_first"), rule.get("format"))
    for i, rule in amounts:
        if i < len(row) and not (_PLAIN_AMOUNT.match(row[i]) and rule["decimal_separator"] != ","):
            record[header[i]] = to_decimal(row[i], rule["decimal_separator"], rule.get("thousands_separator")) or ""
    if currency and not record.get("currency"):
        record["currency"] = currency
    if identity is not None:
        record["id"] = identity
    return record


def _unreadable(row: sources.BadRow, identity: str) -> dict:
    return {"id": identity, "_import_error": {"code": "malformed_row", "message": row.problem},
            "fields": list(row)[:20]}


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_PLAIN_AMOUNT = re.compile(r"-?\d+(?:\.\d+)?\Z")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _label(table: sources.Table, position: int) -> str:
    return table.header[position] if table.header and position < len(table.header) else f"column {position + 1}"


def pass_through(table: sources.Table, positions: dict[str, int]) -> Iterator[dict]:
    header = table.header
    renamed = {pos: field for field, pos in positions.items()}
    for row in table.rows:
        if isinstance(row, sources.BadRow):
            yield {"_import_error": {"code": "malformed_row", "message": row.problem}, "fields": list(row)[:20]}
        elif header:
            yield {renamed.get(i, name): value for i, (name, value) in enumerate(zip(header, row, strict=False))}
        else:
            yield {renamed.get(i, f"column_{i + 1}"): value for i, value in enumerate(row)}


def mapped(table: sources.Table, positions: dict[str, int], spec: Mapping, decisions: dict) -> Iterator[dict]:
    date_rules = decisions["dates"]
    numbers = decisions["numbers"]
    preamble = decisions.get("preamble") or {}
    derive = IdDeriver(preamble.get("account", ""))
    id_column = _label(table, positions["id"]) if "id" in positions else None
    direction = decisions.get("direction")
    debit_values = ({str(v).strip().lower() for v in direction["debit_values"]}
                    if direction and direction.get("debit_values") is not None else None)
    currency_default = (spec.constants.get("currency") or spec.default_currency or decisions["currency"] or "")
    account_default = spec.constants.get("account") or preamble.get("account", "")

    def cell(row: list[str], field: str) -> str:
        position = positions.get(field)
        if position is None or position >= len(row):
            return spec.constants.get(field, "")
        # Trimmed (padded exports), but not of white space that changes what a text is.
        return as_written(row[position])

    fallback = date_rules.get("date_fallback") if "date" in positions else None
    for row in table.rows:
        identity = derive(row) if id_column is None else None
        if isinstance(row, sources.BadRow):
            yield _unreadable(row, identity or cell(row, "id"))
            continue
        record: dict[str, Any] = {}
        for field in ("date", "value_date"):
            if field in positions:
                rule = date_rules[field]
                record[field] = to_iso_date(cell(row, field), rule.get("day_first"), rule.get("format"))
        if fallback is not None and not record.get("date"):
            record["date"] = to_iso_date(cell(row, "date_fallback"), fallback.get("day_first"), fallback.get("format"))
        if "amount" in positions:
            amount = _number(cell(row, "amount"), numbers["amount"])
        else:
            debit = _number(cell(row, "debit"), numbers["debit"]) if "debit" in numbers else None
            credit = _number(cell(row, "credit"), numbers["credit"]) if "credit" in numbers else None
            amount = _combine(debit, credit)
        amount = spec.scaled(amount)  # "minor_units": written in cents (issue 19, jobs.importing.mapping)
        if amount is not None and direction:
            marker = cell(row, "direction")
            debit_marked = (marker.strip().lower() in debit_values if debit_values is not None
                            else direction_of(marker) < 0)
            amount = _signed(amount, negative=debit_marked)
        if amount is not None and spec.sign == "inverted":
            amount = negate(amount)
        record["amount"] = amount if amount is not None else ""
        record["currency"] = cell(row, "currency") or currency_default
        for field in ("account", "counterparty", "description", "reference"):
            value = cell(row, field) or (account_default if field == "account" else "")
            if value:
                record[field] = value
        if id_column is None:
            record["id"] = identity
        else:
            record["id"] = cell(row, "id")
            if not record["id"]:
                record["_import_error"] = {
                    "code": "missing_id", "field": "id",
                    "message": f"the id column '{id_column}' is empty in this row, while the file's rows carry "
                               "ids; give the row an id, or map no id column so that every id is derived"}
        yield record


def _signed(amount: str, negative: bool) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(amount).copy_abs()
    except InvalidOperation:
        return amount
    return str(-value if negative else value)


def _number(value: str, rule: dict) -> str | None:
    return to_decimal(value, rule["decimal_separator"], rule.get("thousands_separator"))


def _combine(debit: str | None, credit: str | None) -> str | None:
    from decimal import Decimal, InvalidOperation

    try:
        if debit and credit:
            return str(Decimal(credit).copy_abs() - Decimal(debit).copy_abs())
        if debit:
            return str(-Decimal(debit).copy_abs())
        if credit:
            return str(Decimal(credit).copy_abs())
    except InvalidOperation:
        return debit or credit  # unreadable: the handler rejects it with its reason
    return None


def negate(amount: str) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        return str(-Decimal(amount))
    except InvalidOperation:
        return amount


