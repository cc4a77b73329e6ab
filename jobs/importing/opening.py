"""Opening an import: the files people really have: bank and ledger exports in any common shape.

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
import io
from collections.abc import Callable, Iterator
from typing import IO, Any

from jobs.errors import InputError
from jobs.importing import blocks, headers, sources, statements
from jobs.importing.limits import Budget, Inflated
from jobs.importing.mapping import CANONICAL, FINANCIAL, Mapping, guess_columns, resolve
from jobs.importing.readers import format_from_name, open_records
from jobs.importing.rows import (
    IdDeriver,
    SkippedRows,
    column_deciders,
    decide,
    decide_canonical,
    mapped,
    negate,
    observe,
    pass_through,
    row_form,
    without_skipped,
)
from jobs.importing.values import DateColumn, to_decimal, to_iso_date

HINTS = ("day_first", "date_format", "decimal_separator")  # job options that also pin a canonical file's reading
STATEMENTS = {"ofx": statements.ofx_records, "mt940": statements.mt940_records, "camt": statements.camt_records}
STATEMENT_IDS = "the statement's transaction references, within their account (<account>/<reference>)"
RECORD_IDS = ("the records' own ids when the first record carries one (then every record must); otherwise "
              "derived from each record's own text and its occurrence")
TRANSACTION_TYPES = ("transaction", "analysis", "reconciliation")


def expects_transactions(data_type: str) -> bool:
    """Whether a data type's records are dated amounts, read from a table's date and amount
    columns (the built-in ones, and any whose handler is the transaction handler's kind)."""
    if data_type in TRANSACTION_TYPES:
        return True
    from jobs.datatypes.registry import get_data_type
    from jobs.datatypes.transaction import TransactionHandler

    try:
        return isinstance(get_data_type(data_type).handler, TransactionHandler)
    except Exception:
        return False


@dataclasses.dataclass
class Import:
    """An opened import. `records` are dicts, or, when `keys` is set, rows: lists of values in
    `keys` order (a canonical table, stored as rows: jobs.engine.payloads), with a dict for a row of
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
    head = raw.peek(4096)[:4096] if hasattr(raw, "peek") else b""
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
    # Blank lines may come before an OFX header (issue 19): judged on what follows them.
    stripped = head.lstrip(b"\xef\xbb\xbf \r\n\t")
    is_ofx = stripped.startswith((b"OFXHEADER", b"<OFX", b"<?xml", b"<?OFX")) and (b"OFX" in stripped[:512])
    if by_name == "xlsx" and not is_zip:
        raise InputError(f"the file {name} is named like an Excel workbook but is not one")
    if by_name in (None, "csv", "json") and not is_zip and not is_ofx:
        statement = statements.sniff(head, name)
        if statement:
            return statement
    if by_name is None or (by_name == "csv" and is_ofx):
        return "xlsx" if is_zip else "ofx" if is_ofx else "sniff"
    return by_name


class _Borrowed(io.RawIOBase):
    """A view of the caller's file that our readers may close without closing it. Every read
    checks the request's deadline (ZENITH_MAX_PARSE_SECONDS), so no reader can go on past it
    for longer than it takes to use one buffer's worth of the file."""

    def __init__(self, raw: IO[bytes], budget: Budget):
        self.raw = raw
        self.budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.budget.check_time()
        data = self.raw.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


def _reopenable(raw: IO[bytes], name: str, budget: Budget) -> Callable[[], io.BufferedReader]:
    """A function giving a fresh binary stream of the (un-gzipped) content each call, read
    within `budget` (time; decompressed size and ratio)."""
    raw.seek(0)
    gzipped = raw.read(2) == b"\x1f\x8b"

    def reopen() -> io.BufferedReader:
        raw.seek(0)
        stream = io.BufferedReader(_Borrowed(raw, budget), 1 << 16)
        if gzipped:
            return io.BufferedReader(Inflated(stream, budget), 1 << 16)
        return stream

    return reopen


def open_import(raw: IO[bytes], name: str = "", fmt: str | None = None, mapping: Any = None,
                options: dict | None = None, expects_transactions: bool = False) -> Import:
    """Records and what was detected. Structural problems raise InputError (the request is
    refused); bad values are left for the data type's handler to reject record by record.

    `options` are the job's: its day_first / date_format / decimal_separator pin the reading
    of a tabular file's date and amount columns where the mapping does not. When the records
    come out with ISO dates and plain decimals (canonical and mapped modes) those keys are
    removed from `options`, so the handler does not read the normalised values with them again.

    All of it, records included, is read within one `Budget` (jobs.importing.limits) that
    starts here: over a limit is a LimitExceeded naming it.

    `expects_transactions`: the data type reads dated amounts (expects_transactions()), so a
    table in which no date or amount column is found is refused with the file-level
    diagnosis (the columns considered, the mapping line that would fix it) instead of
    failing every row for a missing id."""
    spec = mapping if isinstance(mapping, Mapping) else Mapping.parse(mapping)
    if not hasattr(raw, "seek") or not raw.seekable():
        raise InputError("the upload must be a seekable file")
    budget = Budget()
    reopen = _reopenable(raw, name, budget)
    kind = detect_format(reopen(), name, fmt)
    if kind in STATEMENTS:
        records = STATEMENTS[kind](reopen(), budget)
        return Import(kind, _apply_json_mapping(records, spec),
                      {"format": kind, "mode": "statement", "id": STATEMENT_IDS})
    if kind in ("json", "jsonl") or (kind == "sniff" and _looks_like_json(reopen())):
        real, records = open_records(reopen(), name=name, fmt=None if kind == "sniff" else kind, budget=budget)
        detected = {"format": real, "mode": "mapped" if not spec.is_empty else "canonical", "id": RECORD_IDS}
        return Import(real, _apply_json_mapping(records, spec, derive=True), detected)
    if kind == "sniff":
        kind = "csv"
    if kind == "csv":
        _reject_binary(reopen(), name)

    def table() -> sources.Table:
        stream = reopen()
        if kind == "xlsx":
            return sources.xlsx_table(stream, sheet=spec.sheet, header_row=spec.header_row,
                                      has_header=spec.has_header, budget=budget)
        return sources.delimited_table(stream, encoding=spec.encoding, delimiter=spec.delimiter,
                                       header_row=spec.header_row, has_header=spec.has_header, budget=budget)

    first = table()
    try:
        positions = resolve(spec, first.header)
    except InputError as exc:
        if first.header is None or exc.line is not None:
            raise
        raise InputError(str(exc), first.header_row) from None
    header = first.header
    guessed: dict[str, str] = {}
    if not spec.columns and expects_transactions and not set(positions) & FINANCIAL:
        # No header row, or none of its names says date or amount (a language not listed):
        # the columns are read by what they hold (issue 19), and the import says which were
        # guessed and how. Columns found by their names keep them.
        found, guessed = guess_columns(_sample_rows(table, GUESS_ROWS))
        taken = set(positions.values())
        positions = {**{field: pos for field, pos in found.items() if pos not in taken}, **positions}
        guessed = {field: how for field, how in guessed.items() if positions.get(field) == found[field]}
    canonical_positions = {field: pos for field, pos in positions.items()
                           if field not in ("direction", "date_fallback")}
    canonical = (spec.is_empty and header is not None and canonical_positions
                 and all(header[pos] == field for field, pos in canonical_positions.items())
                 and set(canonical_positions) <= CANONICAL)
    if canonical:
        positions = canonical_positions
    detected = {"format": kind, "encoding": first.encoding, "delimiter": first.delimiter,
                "header_row": first.header_row if header else None, "columns": header or [],
                "mapping": {field: (header[pos] if header else pos + 1)
                            for field, pos in sorted(positions.items(), key=lambda item: item[1])}}
    if guessed:
        why = ("the file has no header row" if header is None else
               "no column of the header is named as a date or an amount")
        detected["guessed"] = {"why": f"{why}, so its columns were read by what they hold", **guessed}
    if kind == "xlsx":
        detected.pop("delimiter")
    financial = bool(set(positions) & FINANCIAL)
    # A table with no date or amount column is refused with its diagnosis, with or without a
    # header row (an empty file is not a table: it is refused for having no items).
    if not financial and expects_transactions and (header is not None or _sample_rows(table, 1)):
        raise InputError(diagnosis_sentence(header, positions, _sample_rows(table)), first.header_row)
    if financial:
        spec = _with_hints(spec, options, detected)
    if canonical and financial:
        detected["mode"] = "canonical"
        rows, decisions = decide_canonical(first, table, positions, spec, max_rows=_max_rows())
        detected.update(**decisions["detected"])
        form = row_form(first.header, positions, decisions)
        chunks = (blocks.chunker(reopen, form, encoding=first.encoding, delimiter=first.delimiter,
                                 header_row=first.header_row, budget=budget)
                  if kind == "csv" and not first.bare_quotes else None)
        return Import(kind, form.rows(rows), detected, keys=form.keys, chunks=chunks)
    if canonical or not financial:
        detected["mode"] = "canonical" if canonical else "pass-through"
        if not canonical:
            # Without financial columns only explicit mappings rename (an entity file's
            # "name" stays "name", though "name" is a synonym of counterparty).
            positions = {field: pos for field, pos in positions.items() if field in spec.columns}
            detected["mapping"] = {field: detected["mapping"][field] for field in positions}
        return Import(kind, pass_through(first, positions), detected)
    columns = column_deciders(first, positions)
    skipped = SkippedRows(dates=[(positions[field], column) for field, column in columns.items()
                                 if isinstance(column, DateColumn) and not spec.date_format])
    observe(columns, without_skipped(first.rows, positions, spec, skipped), positions, dates=not spec.date_format,
            max_rows=_max_rows())
    header_currencies = ({field: headers.currency_of(header[pos]) for field, pos in positions.items()
                          if field in ("amount", "debit", "credit")} if header else {})
    decisions = decide(columns, positions, spec, header_currencies, first.preamble)
    if "direction" in positions and decisions["direction"] is None:
        positions.pop("direction")
        detected["mapping"].pop("direction", None)
    detected.update(mode="mapped", **decisions["detected"])
    if skipped.count:
        detected["skipped_rows"] = skipped.as_dict()
    if skipped.repaired:
        detected["repaired_rows"] = skipped.repaired_dict()
    detected["diagnosis"] = diagnose(header, positions, detected, spec, options)
    rows = without_skipped(table().rows, positions, spec)
    return Import(kind, mapped(dataclasses.replace(first, rows=rows), positions, spec, decisions), detected)


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


def _max_rows() -> int:
    """Rows a whole-column pass may read before the file is refused as too many items (it
    would be at submission, after the same pass)."""
    from django.conf import settings

    return settings.ZENITH_MAX_ITEMS_PER_JOB


def _looks_like_json(stream) -> bool:
    head = stream.peek(256)[:256].lstrip(b"\xef\xbb\xbf \r\n\t")
    return head.startswith((b"[", b"{"))


def _reject_binary(stream, name: str) -> None:
    """A file that is not text (an image, a PDF, a workbook named .csv) is refused by name."""
    from jobs.importing.readers import reject_binary

    head = stream.peek(65536)[:65536]
    reject_binary(head, name, encoding=sources.detect_encoding(head))


def map_records(records: Iterator[dict], mapping: Any = None) -> Iterator[dict]:
    """Records sent as JSON objects (a JSON body's `items`): an explicit mapping applied, and
    ids by the same rule as a JSON file's (`_apply_json_mapping`)."""
    spec = mapping if isinstance(mapping, Mapping) else Mapping.parse(mapping)
    return _apply_json_mapping(iter(records), spec, derive=True)


def _apply_json_mapping(records: Iterator[dict], spec: Mapping, derive: bool = False) -> Iterator[dict]:
    """Records that are already objects: rename mapped keys, apply the explicit value rules.

    With `derive`, ids follow one rule, the same for a JSON or JSON-lines file and a JSON
    body's items (docs/design.md, "Errors"; issue 19): the dataset carries ids when its first
    record with a date or an amount has an id. Then every such record must have one (one
    without fails alone, with the reason); otherwise each record without an id gets one
    derived from its own text as sent (before any mapping) and its occurrence."""
    renames = {column: field for field, column in spec.columns.items() if isinstance(column, str)}
    deriver = IdDeriver() if derive else None
    carries: bool | None = None
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
            out = spec.in_major_units(out)  # "minor_units": written in cents (issue 19, jobs.importing.mapping)
            if spec.sign == "inverted" and out.get("amount") not in (None, ""):
                out["amount"] = negate(str(out["amount"]))
        if deriver is not None and ("date" in out or "amount" in out):
            has_id = "id" in out  # an id key given, even empty, is the record's choice (then it fails alone)
            if carries is None:
                carries = has_id
            if not has_id:
                if carries:
                    out = {**out, "_import_error": {
                        "code": "missing_id", "field": "id",
                        "message": "this record has no id while the dataset's records carry ids (the first one "
                                   "has one): give it an id, or send the dataset without ids so that every id is "
                                   "derived"}}
                else:
                    out = {**out, "id": deriver(record)}
        yield out


DIAGNOSED = ("date", "amount", "currency", "account", "counterparty", "description", "id")


def diagnose(header: list[str] | None, positions: dict[str, int], detected: dict, spec: Mapping,
             options: dict | None) -> dict:
    """What the preview and the job page show at file level (issue 19): the fields found and
    where, those not found and what stands in for them, the columns left unread, and the
    mapping line that would fix what would fail."""
    def column(pos: int):
        return header[pos] if header else pos + 1

    found = {field: column(pos) for field, pos in positions.items()}
    base = (options or {}).get("base_currency")
    not_found: dict[str, str] = {}
    fix: dict[str, Any] = {}
    if "amount" not in found and ("debit" in found or "credit" in found):
        found["amount"] = " - ".join(str(found[f]) for f in ("debit", "credit") if f in found)
    for field in DIAGNOSED:
        if field in found:
            continue
        if field == "currency":
            if spec.constants.get("currency") or spec.default_currency:
                not_found[field] = f"{spec.constants.get('currency') or spec.default_currency} (from the mapping)"
            elif detected.get("currency"):
                not_found[field] = str(detected["currency"])
            elif (options or {}).get("default_currency"):
                not_found[field] = f"{options['default_currency']} (the job's default_currency, inferred)"
            elif base:
                not_found[field] = f"{base} (the project's base currency, stored as inferred)"
            else:
                not_found[field] = "none: every row will fail missing_currency"
                fix["default_currency"] = "EUR"
        elif field == "id":
            not_found[field] = "derived from each row's own text and its occurrence in the file"
        elif field == "account" and detected.get("account"):
            not_found[field] = str(detected["account"])
        else:
            not_found[field] = "not found: left empty"
    used = set(found.values())
    unused = [name for name in (header or []) if name and name not in used]
    result: dict[str, Any] = {"found": found, "not_found": not_found, "columns_not_read": unused}
    if detected.get("guessed"):
        result["guessed"] = ("read by what they hold: " + "; ".join(
            f"{field} from {how}" for field, how in detected["guessed"].items() if field != "why"))
    if detected.get("skipped_rows"):
        skipped = detected["skipped_rows"]
        result["skipped_rows"] = (f"{skipped['count']} row(s) are not records and were skipped: " + "; ".join(
            f"{reason}: {count}" for reason, count in skipped["reasons"].items()))
    if detected.get("repaired_rows"):
        result["repaired_rows"] = (f"{detected['repaired_rows']['count']} row(s) of another width than the header "
                                   f"were read, e.g. {detected['repaired_rows']['examples'][0]}")
    if fix:
        result["fix"] = "add to the mapping: " + ", ".join(f'"{k}": "{v}"' for k, v in fix.items()) + \
            " (the currency the file is in), or set the project's base currency"
    return result


def _sample_rows(table: Callable[[], sources.Table], count: int = 20) -> list[list[str]]:
    rows = []
    for row in table().rows:
        rows.append(row)
        if len(rows) >= count:
            break
    return rows


def diagnosis_sentence(header: list[str] | None, positions: dict[str, int], rows: list[list[str]]) -> str:
    """Why a table cannot be read as transactions, the columns considered, and the mapping
    line that would fix it, with columns guessed from the first rows' values."""
    from jobs.datatypes.base import RecordRejected
    from jobs.datatypes.fields import parse_amount, parse_date

    names = header or [str(i + 1) for i in range(max((len(r) for r in rows), default=0))]

    def share(pos: int, check) -> float:
        values = [row[pos] for row in rows if pos < len(row) and row[pos].strip()]
        good = 0
        for value in values:
            try:
                check(value)
                good += 1
            except RecordRejected:
                pass
        return good / len(values) if values else 0.0

    taken = set(positions.values())
    dates = [pos for pos in range(len(names)) if pos not in taken and share(pos, lambda v: parse_date(
        v, day_first=True)) >= 0.8]
    amounts = [pos for pos in range(len(names)) if pos not in taken and pos not in dates and share(
        pos, parse_amount) >= 0.8]
    missing = [field for field in ("date", "amount") if field not in positions]
    guess = {}
    if "date" in missing and dates:
        guess["date"] = names[dates[0]]
    if "amount" in missing and amounts:
        guess["amount"] = names[amounts[-1]]
    considered = ", ".join(f"'{name}'" for name in names if name) or "none"
    sentence = (f"no {' or '.join(missing)} column was recognised among the columns {considered}; "
                "map the file's columns to Zenith's fields")
    if guess:
        sentence += ", e.g. the mapping " + "{" + ", ".join(f'"{k}": "{v}"' for k, v in guess.items()) + "}"
    return sentence


PREVIEW_CHARS = 1 << 20
GUESS_ROWS = 200  # rows of a table without a header whose values decide what its columns hold


DUPLICATE_SCAN = 200_000  # records whose ids the preview checks for repeats


def preview(raw: IO[bytes], name: str, data_type: str, *, fmt: str | None = None, mapping: Any = None,
            limit: int = 20, options: dict | None = None) -> dict:
    """The first `limit` records as Zenith will read them, each validated by the data type's
    handler, with what was detected, its file-level diagnosis, and warnings (ids that repeat
    within the file). Uses the same code as the import itself.

    Fewer when the records shown would pass PREVIEW_CHARS of text: a preview is echoed back
    whole, and its rows may each be as long as a line may be."""
    from jobs.datatypes.base import BatchContext, RecordRejected
    from jobs.datatypes.registry import get_data_type

    handler = get_data_type(data_type).handler
    options = dict(options or {})
    transactions = expects_transactions(data_type)
    imported = open_import(raw, name=name, fmt=fmt, mapping=mapping, options=options,
                           expects_transactions=transactions)
    ctx = BatchContext(job_id=None, project_id="", batch_id=0, batch_number=0, data_type=data_type,
                       options=options or {}, attempt=1)
    rows = []
    shown = 0
    default = options.get("default_currency") or options.get("base_currency")
    for index, record in enumerate(imported.dicts()):
        if index >= limit or (rows and shown > PREVIEW_CHARS):
            break
        shown += sum(len(value) if isinstance(value, str) else 8 for value in record.values())
        try:
            handler.validate(record, ctx)
            if transactions and default and record.get("currency") in (None, ""):
                record = {**record, "currency": default, "currency_inferred": True}
            rows.append({"index": index, "record": record, "valid": True})
        except RecordRejected as rejected:
            rows.append({"index": index, "record": record, "valid": False,
                         "error": {"code": rejected.code, "field": rejected.field, "message": rejected.message}})
    detected = imported.detected
    warnings = []
    if transactions:
        repeats = _repeated_ids(open_import(raw, name=name, fmt=fmt, mapping=mapping, options=dict(options),
                                            expects_transactions=True))
        if repeats:
            count, examples = repeats
            warnings.append(f"the id column is not unique: {count} record(s) repeat an id already used in this "
                            f"file (e.g. {', '.join(examples)}); only the first of each is stored. Map another id "
                            "column, or none so that ids are derived from each row")
        if detected.get("mode") in ("mapped", "canonical") and "diagnosis" not in detected:
            detected = {**detected, "diagnosis": diagnose(detected.get("columns"), {
                field: detected["columns"].index(column) for field, column in (detected.get("mapping") or {}).items()
                if column in (detected.get("columns") or [])}, detected, Mapping.parse(mapping) if not isinstance(
                    mapping, Mapping) else mapping, options)} if detected.get("columns") else detected
    result = {"detected": detected, "rows": rows}
    if warnings:
        result["warnings"] = warnings
    return result


def _repeated_ids(imported: Import) -> tuple[int, list[str]] | None:
    """(how many records repeat an earlier id, a few such ids) over the first DUPLICATE_SCAN
    records, or None. Derived ids never repeat (they count occurrences)."""
    seen: set[int] = set()
    repeated, examples = 0, []
    for index, record in enumerate(imported.dicts()):
        if index >= DUPLICATE_SCAN:
            break
        identity = record.get("id") if isinstance(record, dict) else None
        if identity in (None, "") or str(identity).startswith("auto-"):
            continue
        key = hash(str(identity))
        if key in seen:
            repeated += 1
            if len(examples) < 5 and str(identity) not in examples:
                examples.append(str(identity))
        else:
            seen.add(key)
    return (repeated, examples) if repeated else None
