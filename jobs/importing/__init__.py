"""Importing the files people really have: bank and ledger exports in any common shape.

`open_import` turns an uploaded file into Zenith records plus a description of what was
detected (encoding, delimiter, header row, column mapping, date and number conventions). It
is what submissions, the preview endpoint, the upload page and `manage.py submit_job` all use,
so a preview shows exactly what an import will read.

Three modes:
- *canonical*: a CSV or spreadsheet whose headers already are Zenith's field names (id, date,
  amount, currency, ...) and no mapping given. Rows pass through as they are (one pass, the
  fast path for exports made for Zenith).
- *mapped*: financial columns found by header synonyms or an explicit mapping. The file is
  read twice: once to decide each date and amount column as a whole, once to build records
  with ISO dates, plain decimal amounts (debit/credit columns combined, sign convention
  applied), the currency, and an id derived from content and occurrence when there is none.
- *pass-through*: no financial column (e.g. entity names): rows become records keyed by
  their headers, with any mapped columns renamed.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
from collections.abc import Callable, Iterator
from typing import IO, Any

from ..readers import InputError, format_from_name, open_records
from . import sources
from .mapping import CANONICAL, FINANCIAL, Mapping, resolve
from .values import AmbiguousColumn, DateColumn, NumberColumn, to_decimal, to_iso_date

__all__ = ["Import", "InputError", "Mapping", "map_records", "open_import", "preview"]

TABULAR = ("csv", "xlsx")


@dataclasses.dataclass
class Import:
    format: str
    records: Iterator[dict]
    detected: dict


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


def open_import(raw: IO[bytes], name: str = "", fmt: str | None = None, mapping: Any = None) -> Import:
    """Records and what was detected. Structural problems raise InputError (the request is
    refused); bad values are left for the data type's handler to reject record by record."""
    spec = mapping if isinstance(mapping, Mapping) else Mapping.parse(mapping)
    if not hasattr(raw, "seek") or not raw.seekable():
        raise InputError("the upload must be a seekable file")
    reopen = _reopenable(raw, name)
    kind = detect_format(reopen(), name, fmt)
    if kind == "ofx":
        records = sources.ofx_records(reopen())
        return Import("ofx", _apply_json_mapping(records, spec), {"format": "ofx", "mode": "statement"})
    if kind in ("json", "jsonl") or (kind == "sniff" and _looks_like_json(reopen())):
        real, records = open_records(reopen(), name=name, fmt=None if kind == "sniff" else kind)
        detected = {"format": real, "mode": "mapped" if not spec.is_empty else "canonical"}
        return Import(real, _apply_json_mapping(records, spec), detected)
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
    positions = resolve(spec, first.header)
    detected = {"format": kind, "encoding": first.encoding, "delimiter": first.delimiter,
                "header_row": first.header_row if first.header else None, "columns": first.header or [],
                "mapping": {field: (first.header[pos] if first.header else pos + 1)
                            for field, pos in sorted(positions.items(), key=lambda item: item[1])}}
    if kind == "xlsx":
        detected.pop("delimiter")
    canonical = (spec.is_empty and first.header is not None and positions
                 and all(first.header[pos] == field for field, pos in positions.items())
                 and set(positions) <= CANONICAL)
    if canonical or not (set(positions) & FINANCIAL):
        detected["mode"] = "canonical" if canonical else "pass-through"
        if not canonical:
            # Without financial columns only explicit mappings rename (an entity file's
            # "name" stays "name", though "name" is a synonym of counterparty).
            positions = {field: pos for field, pos in positions.items() if field in spec.columns}
            detected["mapping"] = {field: detected["mapping"][field] for field in positions}
        return Import(kind, _pass_through(first, positions), detected)
    decisions = _analyse(first, positions, spec)
    detected.update(mode="mapped", **decisions["detected"])
    return Import(kind, _mapped(table(), positions, spec, decisions), detected)


def _looks_like_json(stream) -> bool:
    head = stream.peek(256)[:256].lstrip(b"\xef\xbb\xbf \r\n\t")
    return head.startswith((b"[", b"{"))


def _reject_binary(stream, name: str) -> None:
    """A file that is not text (an image, a PDF, a workbook named .csv) is refused by name."""
    from ..readers import reject_binary

    head = stream.peek(65536)[:65536]
    reject_binary(head, name, allow_nul=sources.detect_encoding(head).startswith("utf-16"))


def _analyse(table: sources.Table, positions: dict[str, int], spec: Mapping) -> dict:
    """The first pass: each date and amount column read as a whole."""
    dates = {field: DateColumn(_label(table, pos)) for field, pos in positions.items()
             if field in ("date", "value_date")}
    numbers = {field: NumberColumn(_label(table, pos)) for field, pos in positions.items()
               if field in ("amount", "debit", "credit")}
    if not spec.date_format:
        for row in table.rows:
            for field, column in dates.items():
                if positions[field] < len(row):
                    column.observe(row[positions[field]])
            for field, column in numbers.items():
                if positions[field] < len(row):
                    column.observe(row[positions[field]])
    else:
        for row in table.rows:
            for field, column in numbers.items():
                if positions[field] < len(row):
                    column.observe(row[positions[field]])
    try:
        date_decisions = {field: (col.decide(spec.day_first) if not spec.date_format else
                                  {"column": col.name, "format": spec.date_format}) for field, col in dates.items()}
        number_decisions = {field: col.decide(spec.decimal_separator) for field, col in numbers.items()}
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
    occurrences: dict[bytes, int] = {}

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
            amount = to_decimal(cell(row, "amount"), numbers["amount"]["decimal_separator"])
        else:
            debit = (to_decimal(cell(row, "debit"), numbers["debit"]["decimal_separator"])
                     if "debit" in numbers else None)
            credit = (to_decimal(cell(row, "credit"), numbers["credit"]["decimal_separator"])
                      if "credit" in numbers else None)
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
        external_id = cell(row, "id")
        if not external_id:
            content = "\x1f".join(str(record.get(f, "")) for f in ("date", "amount", "currency", "account",
                                                                    "counterparty", "description", "reference"))
            digest = hashlib.sha1(content.encode("utf-8")).digest()[:12]
            occurrences[digest] = occurrences.get(digest, 0) + 1
            external_id = f"auto-{digest.hex()}-{occurrences[digest]}"
        record["id"] = external_id
        yield record


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


def _apply_json_mapping(records: Iterator[dict], spec: Mapping) -> Iterator[dict]:
    """Records that are already objects: rename mapped keys, apply the explicit value rules."""
    if spec.is_empty:
        yield from records
        return
    renames = {column: field for field, column in spec.columns.items() if isinstance(column, str)}
    for record in records:
        if not isinstance(record, dict):
            yield record
            continue
        out = {renames.get(key, key): value for key, value in record.items()}
        for field, value in spec.constants.items():
            out.setdefault(field, value)
        if spec.default_currency:
            out.setdefault("currency", spec.default_currency)
        if isinstance(out.get("date"), str) and (spec.day_first is not None or spec.date_format):
            out["date"] = to_iso_date(out["date"], spec.day_first, spec.date_format)
        if isinstance(out.get("amount"), str) and spec.decimal_separator:
            out["amount"] = to_decimal(out["amount"], spec.decimal_separator) or ""
        if spec.sign == "inverted" and out.get("amount") not in (None, ""):
            out["amount"] = _negate(str(out["amount"]))
        yield out


def preview(raw: IO[bytes], name: str, data_type: str, *, fmt: str | None = None, mapping: Any = None,
            limit: int = 20, options: dict | None = None) -> dict:
    """The first `limit` records as Zenith will read them, each validated by the data type's
    handler, with what was detected. Uses the same code as the import itself."""
    from ..datatypes.base import BatchContext, RecordRejected
    from ..datatypes.registry import get_data_type

    handler = get_data_type(data_type).handler
    imported = open_import(raw, name=name, fmt=fmt, mapping=mapping)
    ctx = BatchContext(job_id=None, project_id="", batch_id=0, batch_number=0, data_type=data_type,
                       options=options or {}, attempt=1)
    rows = []
    for index, record in enumerate(imported.records):
        if index >= limit:
            break
        try:
            handler.validate(record, ctx)
            rows.append({"index": index, "record": record, "valid": True})
        except RecordRejected as rejected:
            rows.append({"index": index, "record": record, "valid": False,
                         "error": {"code": rejected.code, "field": rejected.field, "message": rejected.message}})
    return {"detected": imported.detected, "rows": rows}
