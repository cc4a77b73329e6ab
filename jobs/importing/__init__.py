"""Importing the files people really have: bank and ledger exports in any common shape.

`open_import` turns an uploaded file into Zenith records plus a description of what was
detected (encoding, delimiter, header row, column mapping, date and number conventions). It
is what submissions, the preview endpoint, the upload page and `manage.py submit_job` all use,
so a preview shows exactly what an import will read.

Three modes:
- *canonical*: a CSV or spreadsheet whose headers already are Zenith's field names (id, date,
  amount, currency, ...) and no mapping given. Rows pass through with their columns as they
  are, in one pass when it can be (the fast path for exports made for Zenith): the date and
  amount columns are decided from the first rows read (the whole column only when those
  rows cannot decide), their values written as ISO dates and plain decimals, and a row
  without an id column gets a derived id as in mapped mode.
- *mapped*: financial columns found by header synonyms or an explicit mapping. The file is
  read twice: once to decide each date and amount column as a whole, once to build records
  with ISO dates, plain decimal amounts (debit/credit columns combined, sign convention
  applied), the currency, and an id derived from content and occurrence when there is none.
- *pass-through*: no financial column (e.g. entity names): rows become records keyed by
  their headers, with any mapped columns renamed.

JSON, JSON lines and OFX records are objects already: an explicit mapping renames their keys
and applies its value rules, and a record with a date or amount but no id (no FITID in OFX)
gets a derived id, with the same algorithm as every other mode.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from ..readers import InputError, format_from_name, open_records
from . import blocks, sources
from .mapping import CANONICAL, FINANCIAL, Mapping, resolve
from .values import AmbiguousColumn, DateColumn, NumberColumn, to_decimal, to_iso_date

__all__ = ["Import", "InputError", "Mapping", "map_records", "open_import", "preview"]

TABULAR = ("csv", "xlsx")
DECIDE_ROWS = 1000  # canonical files: rows read to decide date and amount columns before the first record
HINTS = ("day_first", "date_format", "decimal_separator")  # job options that also pin a canonical file's reading


@dataclasses.dataclass
class Import:
    """An opened import. `records` are dicts, or, when `keys` is set, rows: lists of values in
    `keys` order (a canonical table, stored as rows: jobs.payloads), with a dict for a row of
    another shape. `dicts()` gives records as dicts either way."""

    format: str
    records: Iterator[Any]
    detected: dict
    keys: list[str] | None = None
    # The same records cut into batches of a given size without parsing every row at upload,
    # when the file allows it (jobs.importing.blocks); submissions use it instead of `records`.
    chunks: Callable[[int], Iterator[Any]] | None = None

    def dicts(self) -> Iterator[dict]:
        if self.keys is None:
            return self.records
        keys = self.keys
        return (dict(zip(keys, row, strict=True)) if row.__class__ is list else row for row in self.records)


def detect_format(raw: IO[bytes], name: str, fmt: str | None) -> str:
    lowered = (name or "").lower().removesuffix(".gz")
    head = raw.peek(64)[:64] if hasattr(raw, "peek") else b""
    if fmt:
        return fmt
    by_name = format_from_name(name)
    if lowered.endswith((".xlsx", ".xlsm")):
        by_name = "xlsx"
    elif lowered.endswith((".ofx", ".qfx")):
        by_name = "ofx"
    elif lowered.endswith(".txt"):
        by_name = "csv"
    is_zip = head.startswith(b"PK\x03\x04")
    stripped = head.lstrip(b"\xef\xbb\xbf \r\n\t")
    is_ofx = stripped.startswith((b"OFXHEADER", b"<OFX", b"<?xml")) and (b"OFX" in head)
    if by_name == "xlsx" and not is_zip:
        raise InputError(f"the file {name} is named like an Excel workbook but is not one")
    if by_name is None:
        return "xlsx" if is_zip else "ofx" if is_ofx else "sniff"
    return by_name


class _Borrowed(io.RawIOBase):
    """A view of the caller's file that our readers may close without closing it."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


def _reopenable(raw: IO[bytes], name: str) -> Callable[[], io.BufferedReader]:
    """A function giving a fresh binary stream of the (un-gzipped) content each call."""
    raw.seek(0)
    gzipped = raw.read(2) == b"\x1f\x8b"

    def reopen() -> io.BufferedReader:
        raw.seek(0)
        stream = io.BufferedReader(_Borrowed(raw), 1 << 16)
        if gzipped:
            return io.BufferedReader(gzip.GzipFile(fileobj=stream), 1 << 16)  # type: ignore[arg-type]
        return stream

    return reopen


def open_import(raw: IO[bytes], name: str = "", fmt: str | None = None, mapping: Any = None,
                options: dict | None = None) -> Import:
    """Records and what was detected. Structural problems raise InputError (the request is
    refused); bad values are left for the data type's handler to reject record by record.

    `options` are the job's: its day_first / date_format / decimal_separator pin the reading
    of a tabular file's date and amount columns where the mapping does not. When the records
    come out with ISO dates and plain decimals (canonical and mapped modes) those keys are
    removed from `options`, so the handler does not read the normalised values with them again."""
    spec = mapping if isinstance(mapping, Mapping) else Mapping.parse(mapping)
    if not hasattr(raw, "seek") or not raw.seekable():
        raise InputError("the upload must be a seekable file")
    reopen = _reopenable(raw, name)
    kind = detect_format(reopen(), name, fmt)
    if kind == "ofx":
        records = sources.ofx_records(reopen(), _max_bytes())
        return Import("ofx", _apply_json_mapping(records, spec, derive="blank"),
                      {"format": "ofx", "mode": "statement"})
    if kind in ("json", "jsonl") or (kind == "sniff" and _looks_like_json(reopen())):
        real, records = open_records(reopen(), name=name, fmt=None if kind == "sniff" else kind)
        detected = {"format": real, "mode": "mapped" if not spec.is_empty else "canonical"}
        return Import(real, _apply_json_mapping(records, spec, derive="absent"), detected)
    if kind == "sniff":
        kind = "csv"
    if kind == "csv":
        _reject_binary(reopen(), name)

    def table() -> sources.Table:
        stream = reopen()
        if kind == "xlsx":
            return sources.xlsx_table(stream, sheet=spec.sheet, header_row=spec.header_row,
                                      has_header=spec.has_header)
        return sources.delimited_table(stream, encoding=spec.encoding, delimiter=spec.delimiter,
                                       header_row=spec.header_row, has_header=spec.has_header)

    first = table()
    try:
        positions = resolve(spec, first.header)
    except InputError as exc:
        if first.header is None or exc.line is not None:
            raise
        raise InputError(str(exc), first.header_row) from None
    detected = {"format": kind, "encoding": first.encoding, "delimiter": first.delimiter,
                "header_row": first.header_row if first.header else None, "columns": first.header or [],
                "mapping": {field: (first.header[pos] if first.header else pos + 1)
                            for field, pos in sorted(positions.items(), key=lambda item: item[1])}}
    if kind == "xlsx":
        detected.pop("delimiter")
    canonical = (spec.is_empty and first.header is not None and positions
                 and all(first.header[pos] == field for field, pos in positions.items())
                 and set(positions) <= CANONICAL)
    financial = bool(set(positions) & FINANCIAL)
    if financial:
        spec = _with_hints(spec, options, detected)
    if canonical and financial:
        detected["mode"] = "canonical"
        rows, decisions = _decide_canonical(first, table, positions, spec)
        detected.update(**decisions["detected"])
        form = _row_form(first.header, positions, decisions)
        chunks = (blocks.chunker(reopen, form, encoding=first.encoding, delimiter=first.delimiter,
                                 header_row=first.header_row) if kind == "csv" else None)
        return Import(kind, form.rows(rows), detected, keys=form.keys, chunks=chunks)
    if canonical or not financial:
        detected["mode"] = "canonical" if canonical else "pass-through"
        if not canonical:
            # Without financial columns only explicit mappings rename (an entity file's
            # "name" stays "name", though "name" is a synonym of counterparty).
            positions = {field: pos for field, pos in positions.items() if field in spec.columns}
            detected["mapping"] = {field: detected["mapping"][field] for field in positions}
        return Import(kind, _pass_through(first, positions), detected)
    columns = _columns(first, positions)
    _observe(columns, first.rows, positions, dates=not spec.date_format)
    decisions = _decide(columns, positions, spec)
    detected.update(mode="mapped", **decisions["detected"])
    return Import(kind, _mapped(table(), positions, spec, decisions), detected)


def _with_hints(spec: Mapping, options: dict | None, detected: dict) -> Mapping:
    """The mapping with the job's reading options filling what it leaves open; the options are
    taken out of `options` (see open_import)."""
    if not options:
        return spec
    valid = {"day_first": lambda v: isinstance(v, bool), "date_format": lambda v: isinstance(v, str) and bool(v),
             "decimal_separator": lambda v: v in (".", ",")}
    hints = {key: options.pop(key) for key in HINTS if key in options and valid[key](options[key])}
    usable = {}
    if "day_first" in hints and spec.day_first is None:
        usable["day_first"] = hints["day_first"]
    if "date_format" in hints and not spec.date_format:
        usable["date_format"] = hints["date_format"]
    if "decimal_separator" in hints and spec.decimal_separator is None \
            and hints["decimal_separator"] != spec.thousands_separator:
        usable["decimal_separator"] = hints["decimal_separator"]
    if usable:
        detected["from_options"] = usable
    return dataclasses.replace(spec, **usable) if usable else spec


def _max_bytes() -> int:
    from django.conf import settings

    return int(getattr(settings, "ZENITH_MAX_UPLOAD_BYTES", 1 << 30))


def _looks_like_json(stream) -> bool:
    head = stream.peek(256)[:256].lstrip(b"\xef\xbb\xbf \r\n\t")
    return head.startswith((b"[", b"{"))


def _reject_binary(stream, name: str) -> None:
    """A file that is not text (an image, a PDF, a workbook named .csv) is refused by name."""
    from ..readers import reject_binary

    head = stream.peek(65536)[:65536]
    reject_binary(head, name, allow_nul=sources.detect_encoding(head).startswith("utf-16"))


def _columns(table: sources.Table, positions: dict[str, int]) -> dict[str, DateColumn | NumberColumn]:
    columns: dict[str, DateColumn | NumberColumn] = {}
    for field, pos in positions.items():
        if field in ("date", "value_date"):
            columns[field] = DateColumn(_label(table, pos))
        elif field in ("amount", "debit", "credit"):
            columns[field] = NumberColumn(_label(table, pos))
    return columns


def _observe(columns: dict[str, DateColumn | NumberColumn], rows: Iterable[list[str]], positions: dict[str, int],
             dates: bool = True) -> None:
    """The first pass: each date and amount column read as a whole."""
    watched = [(positions[field], column) for field, column in columns.items()
               if dates or isinstance(column, NumberColumn)]
    for row in rows:
        for position, column in watched:
            if position < len(row):
                column.observe(row[position])


def _decide(columns: dict[str, DateColumn | NumberColumn], positions: dict[str, int], spec: Mapping) -> dict:
    """Each column's reading from what `_observe` saw; an undecidable one is an InputError."""
    try:
        date_decisions = {field: (col.decide(spec.day_first) if not spec.date_format else
                                  {"column": col.name, "format": spec.date_format})
                          for field, col in columns.items() if isinstance(col, DateColumn)}
        number_decisions = {field: col.decide(spec.decimal_separator, spec.thousands_separator)
                            for field, col in columns.items() if isinstance(col, NumberColumn)}
    except AmbiguousColumn as exc:
        raise InputError(str(exc)) from None
    symbols = sorted({code for decision in number_decisions.values() for code in decision["currency_symbols"]})
    currency_from_symbol = symbols[0] if len(symbols) == 1 and "currency" not in positions else None
    detected: dict[str, Any] = {"dates": list(date_decisions.values()), "numbers": list(number_decisions.values())}
    if currency_from_symbol:
        detected["currency"] = f"{currency_from_symbol} (from the amounts' currency sign)"
    if "id" not in positions:
        detected["id"] = "derived from each row's content and its occurrence in the file"
    if spec.sign == "inverted":
        detected["sign"] = "inverted (positive amounts are debits)"
    return {"dates": date_decisions, "numbers": number_decisions, "currency": currency_from_symbol,
            "detected": detected}


def _decide_canonical(first: sources.Table, table: Callable[[], sources.Table], positions: dict[str, int],
                      hints: Mapping) -> tuple[Iterator[list[str]], dict]:
    """A canonical file's date and amount columns decided from its first DECIDE_ROWS rows, so
    the file is read once; only when those rows cannot decide is the whole column read (and
    the file read again for its records) before refusing."""
    columns = _columns(first, positions)
    head = list(itertools.islice(first.rows, DECIDE_ROWS))
    _observe(columns, head, positions, dates=not hints.date_format)
    try:
        return itertools.chain(head, first.rows), _decide(columns, positions, hints)
    except InputError:
        if len(head) < DECIDE_ROWS:
            raise
    _observe(columns, first.rows, positions, dates=not hints.date_format)
    return table().rows, _decide(columns, positions, hints)


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
    derive: Callable[[dict], str] | None = None

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
        keys = self.keys
        # A "currency" header that is not the currency column keeps its values unless blank,
        # which only a record can say row by row.
        width = -1 if currency and "currency" in header else len(header)
        # Runs once per record of a million-row upload: only the decided date and amount
        # columns are touched, and no dict is built for a row of the header's width.
        for row in rows:
            if len(row) != width:
                yield _canonical_record(header, row, dates, amounts, currency, derive)
                continue
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
            if derive is not None:
                row.append(derive(dict(zip(keys, row, strict=False))))
            yield row


def _row_form(header: list[str], positions: dict[str, int], decisions: dict) -> RowForm:
    return RowForm(list(header), [(positions[field], rule) for field, rule in decisions["dates"].items()],
                   [(positions[field], rule) for field, rule in decisions["numbers"].items()],
                   decisions["currency"], _IdDeriver() if "id" not in positions else None)


def _canonical_record(header: list[str], row: list[str], dates: list, amounts: list, currency: str | None,
                      derive: Callable[[dict], str] | None) -> dict:
    """`RowForm.rows` for a row narrower or wider than the header: its record as a dict."""
    record: dict[str, Any] = dict(zip(header, row, strict=False))
    for i, rule in dates:
        if i < len(row) and not (_ISO_DAY.match(row[i]) and not rule.get("format")):
            record[header[i]] = to_iso_date(row[i], rule.get("day_first"), rule.get("format"))
    for i, rule in amounts:
        if i < len(row) and not (_PLAIN_AMOUNT.match(row[i]) and rule["decimal_separator"] != ","):
            record[header[i]] = to_decimal(row[i], rule["decimal_separator"], rule.get("thousands_separator")) or ""
    if currency and not record.get("currency"):
        record["currency"] = currency
    if derive is not None:
        record["id"] = derive(record)
    return record


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_PLAIN_AMOUNT = re.compile(r"-?\d+(?:\.\d+)?\Z")


class _IdDeriver:
    """Deterministic ids for records that have none: a hash of the record's normalised content
    and the count of earlier records in the same file with the same content, so re-uploading
    a file gives the same ids and two identical rows stay two records."""

    CONTENT = ("date", "amount", "currency", "account", "counterparty", "description", "reference")

    def __init__(self) -> None:
        self.occurrences: dict[bytes, int] = {}

    def __call__(self, record: dict) -> str:
        content = "\x1f".join(_text(record.get(field)) for field in self.CONTENT)
        digest = hashlib.sha1(content.encode("utf-8")).digest()[:12]
        self.occurrences[digest] = self.occurrences.get(digest, 0) + 1
        return f"auto-{digest.hex()}-{self.occurrences[digest]}"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _label(table: sources.Table, position: int) -> str:
    return table.header[position] if table.header and position < len(table.header) else f"column {position + 1}"


def _pass_through(table: sources.Table, positions: dict[str, int]) -> Iterator[dict]:
    header = table.header
    renamed = {pos: field for field, pos in positions.items()}
    for row in table.rows:
        if header:
            yield {renamed.get(i, name): value for i, (name, value) in enumerate(zip(header, row, strict=False))}
        else:
            yield {renamed.get(i, f"column_{i + 1}"): value for i, value in enumerate(row)}


def _mapped(table: sources.Table, positions: dict[str, int], spec: Mapping, decisions: dict) -> Iterator[dict]:
    date_rules = decisions["dates"]
    numbers = decisions["numbers"]
    derive = _IdDeriver()

    def cell(row: list[str], field: str) -> str:
        position = positions.get(field)
        if position is None or position >= len(row):
            return spec.constants.get(field, "")
        return row[position].strip()

    for row in table.rows:
        record: dict[str, Any] = {}
        for field in ("date", "value_date"):
            if field in positions:
                rule = date_rules[field]
                record[field] = to_iso_date(cell(row, field), rule.get("day_first"), rule.get("format"))
        if "amount" in positions:
            amount = _number(cell(row, "amount"), numbers["amount"])
        else:
            debit = _number(cell(row, "debit"), numbers["debit"]) if "debit" in numbers else None
            credit = _number(cell(row, "credit"), numbers["credit"]) if "credit" in numbers else None
            amount = _combine(debit, credit)
        if amount is not None and spec.sign == "inverted":
            amount = _negate(amount)
        record["amount"] = amount if amount is not None else ""
        record["currency"] = (cell(row, "currency") or spec.constants.get("currency") or spec.default_currency
                              or decisions["currency"] or "")
        for field in ("account", "counterparty", "description", "reference"):
            value = cell(row, field)
            if value:
                record[field] = value
        record["id"] = cell(row, "id") or derive(record)
        yield record


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


def _negate(amount: str) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        return str(-Decimal(amount))
    except InvalidOperation:
        return amount


def map_records(records: Iterator[dict], mapping: Any) -> Iterator[dict]:
    """Applies an explicit mapping to records that are already objects (JSON submissions)."""
    spec = mapping if isinstance(mapping, Mapping) else Mapping.parse(mapping)
    return _apply_json_mapping(iter(records), spec)


def _apply_json_mapping(records: Iterator[dict], spec: Mapping, derive: str | None = None) -> Iterator[dict]:
    """Records that are already objects: rename mapped keys, apply the explicit value rules.
    `derive`: give records with a date or amount but no id a derived one, when the id key is
    "absent" (JSON: a record that carries an id key has chosen its id) or "blank" (OFX)."""
    renames = {column: field for field, column in spec.columns.items() if isinstance(column, str)}
    deriver = _IdDeriver() if derive else None
    numbers = spec.decimal_separator is not None or spec.thousands_separator is not None
    unmapped = spec.is_empty  # once: it is computed from the whole mapping (was 2/3 of a JSON upload)
    for record in records:
        if not isinstance(record, dict):
            yield record
            continue
        if unmapped:
            out = record
        else:
            out = {renames.get(key, key): value for key, value in record.items()}
            for field, value in spec.constants.items():
                out.setdefault(field, value)
            if spec.default_currency:
                out.setdefault("currency", spec.default_currency)
            if isinstance(out.get("date"), str) and (spec.day_first is not None or spec.date_format):
                out["date"] = to_iso_date(out["date"], spec.day_first, spec.date_format)
            if isinstance(out.get("amount"), str) and numbers:
                out["amount"] = to_decimal(out["amount"], spec.decimal_separator, spec.thousands_separator) or ""
            if spec.sign == "inverted" and out.get("amount") not in (None, ""):
                out["amount"] = _negate(str(out["amount"]))
        if deriver is not None and ("date" in out or "amount" in out):
            missing = "id" not in out if derive == "absent" else out.get("id") in (None, "")
            if missing:
                out = {**out, "id": deriver(out)}
        yield out


def preview(raw: IO[bytes], name: str, data_type: str, *, fmt: str | None = None, mapping: Any = None,
            limit: int = 20, options: dict | None = None) -> dict:
    """The first `limit` records as Zenith will read them, each validated by the data type's
    handler, with what was detected. Uses the same code as the import itself."""
    from ..datatypes.base import BatchContext, RecordRejected
    from ..datatypes.registry import get_data_type

    handler = get_data_type(data_type).handler
    options = dict(options or {})
    imported = open_import(raw, name=name, fmt=fmt, mapping=mapping, options=options)
    ctx = BatchContext(job_id=None, project_id="", batch_id=0, batch_number=0, data_type=data_type,
                       options=options or {}, attempt=1)
    rows = []
    for index, record in enumerate(imported.dicts()):
        if index >= limit:
            break
        try:
            handler.validate(record, ctx)
            rows.append({"index": index, "record": record, "valid": True})
        except RecordRejected as rejected:
            rows.append({"index": index, "record": record, "valid": False,
                         "error": {"code": rejected.code, "field": rejected.field, "message": rejected.message}})
    return {"detected": imported.detected, "rows": rows}
