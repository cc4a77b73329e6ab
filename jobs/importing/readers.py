"""Streaming readers for JSON submissions: a JSON array or JSON lines, optionally gzip
(delimited text, spreadsheets and statements are read by jobs.importing, which uses these
for JSON).

Each reader yields one record (a dict) at a time from a binary file object, so a 1,000,000-row
upload is never held in memory as a whole. A structural problem (bad JSON, bytes that are not
UTF-8, a file that is not what its name says) raises `InputError` with the line number; the
submission is then rejected as a whole. Bad *values* inside well-formed records are not input
errors: they fail their record later.

Each reader works within a `Budget` (jobs.importing.limits): gzip is inflated within the
decompression limits, a line of JSON lines and one JSON value within the line limit, a
record's keys within the column limit, and nesting within the depth limit (the C parser
recurses: a RecursionError is caught and refused as too deep).
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterator
from typing import IO, Any

from jobs.errors import InputError
from jobs.importing.limits import Budget, Inflated, LineGuard, check_depth

FORMATS = ("csv", "json", "jsonl")
_CHUNK = 1 << 16


def format_from_name(name: str) -> str | None:
    lowered = (name or "").lower()
    if lowered.endswith(".gz"):
        lowered = lowered[:-3]
    for suffix, fmt in ((".csv", "csv"), (".tsv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"),
                        (".json", "json")):
        if lowered.endswith(suffix):
            return fmt
    return None


def open_records(raw: IO[bytes], name: str = "", fmt: str | None = None,
                 budget: Budget | None = None) -> tuple[str, Iterator[dict]]:
    """Returns (format, iterator of records). The format comes from `fmt`, else the file
    name, else the first bytes. Read within `budget` (a new one when not given)."""
    budget = budget or Budget()
    stream = _maybe_gunzip(raw, budget)
    head = stream.peek(_CHUNK)[:_CHUNK] if hasattr(stream, "peek") else b""
    reject_binary(head, name)
    fmt = fmt or format_from_name(name) or _sniff(head)
    if fmt not in FORMATS:
        raise InputError(f"unsupported format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "csv":
        raise InputError("CSV and spreadsheets are read by jobs.importing (open_import), not here")
    reader = {"json": _json_array_records, "jsonl": _jsonl_records}[fmt]
    return fmt, reader(stream, budget)


def _maybe_gunzip(raw: IO[bytes], budget: Budget) -> io.BufferedReader:
    stream = raw if hasattr(raw, "peek") else io.BufferedReader(raw, _CHUNK)  # type: ignore[arg-type]
    if stream.peek(2)[:2] == b"\x1f\x8b":
        return io.BufferedReader(Inflated(stream, budget), _CHUNK)
    return stream  # type: ignore[return-value]


_MAGIC = {b"PK\x03\x04": "a ZIP archive (an Excel .xlsx file?)", b"%PDF": "a PDF document",
          b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"\xd0\xcf\x11\xe0": "a legacy Office file"}


def reject_binary(head: bytes, name: str, encoding: str | None = None) -> None:
    """Refuses a file whose first bytes say it is not text. In UTF-16 (`encoding`, or a
    byte-order mark) zero bytes are text: a NUL character once decoded is not."""
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise InputError(f"the file {name or ''} is {what}, not CSV, JSON or JSON lines".replace("  ", " "))
    if b"\x00" not in head:
        return
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    if encoding and encoding.startswith("utf-16"):
        if "\x00" not in head[:len(head) // 2 * 2].decode(encoding, errors="replace"):
            return
    raise InputError("the file contains NUL bytes: it is binary, not CSV, JSON or JSON lines")


def _sniff(head: bytes) -> str:
    text = head.lstrip(codecs.BOM_UTF8).lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "jsonl"
    return "csv"


def _decode_line(raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"bytes that are not UTF-8 at column {exc.start + 1}", line) from None


def _jsonl_records(stream: IO[bytes], budget: Budget) -> Iterator[dict]:
    decode = json.JSONDecoder().decode
    # Lines are measured as the bytes pass (UTF-8: a 0x0A byte is a line break), so no line
    # longer than the limit is ever assembled.
    lines = io.BufferedReader(LineGuard(stream, budget), _CHUNK)
    for number, raw in enumerate(lines, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[3:]
        text = _decode_line(raw, number).strip()
        if not text:
            continue
        try:
            record = decode(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg} at column {exc.colno})", number) from None
        except RecursionError:
            raise budget.too_deep(number) from None
        if not isinstance(record, dict):
            raise InputError(f"expected a JSON object, got {_json_kind(record)}", number)
        check_record(record, text, budget, number)
        yield record


def check_record(record: dict, source: str | None, budget: Budget, line: int | None) -> None:
    """A record's keys within the column limit, its nesting within the depth limit."""
    if len(record) > budget.limits.columns:
        budget.check_columns(len(record), line, what="a record has", unit="keys")
    check_depth(record, budget, source, line)


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


class JsonScanner:
    """Reads one JSON text from a binary stream a value at a time, with `raw_decode` over a
    refilled buffer, so arrays of any length are never held whole. Errors carry the line.

    Within `budget`: one value at most the line limit long (ZENITH_MAX_LINE_BYTES) and
    nested at most the depth limit (ZENITH_MAX_JSON_DEPTH); the deadline is checked at each
    refill."""

    def __init__(self, stream: IO[bytes], budget: Budget | None = None):
        self.stream = stream
        self.budget = budget or Budget()
        self.longest = self.budget.limits.line_bytes
        self.decoder = json.JSONDecoder()
        self.utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self.buf, self.pos, self.base_line, self.eof = "", 0, 1, False

    @property
    def line(self) -> int:
        return self.base_line + self.buf.count("\n", 0, self.pos)

    def _refill(self, size: int = _CHUNK) -> bool:
        if self.eof:
            return False
        self.budget.check_time()
        chunk = self.stream.read(size)
        try:
            text = self.utf8.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise InputError("bytes that are not UTF-8", self.line) from None
        self.base_line = self.line
        self.buf, self.pos = self.buf[self.pos:] + text, 0
        if not chunk:
            self.eof = True
        return bool(chunk) or bool(text)

    def peek(self) -> str | None:
        """The next character that is not white space (None at the end), left unread."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n\ufeff":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._refill():
                return None

    def take(self, char: str, what: str) -> None:
        found = self.peek()
        if found != char:
            shown = "the end of the data" if found is None else repr(found)
            raise InputError(f"expected {what}, found {shown}", self.line)
        self.pos += 1

    def value(self, raw: bool = False) -> Any:
        """The next JSON value (or, with `raw`, a (value, its source text) pair)."""
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
                break
            except json.JSONDecodeError as exc:
                # Counted before the refill: a refill at the end of the data still moves the
                # buffer (and base_line) under exc.pos, which would then name a later line.
                line = self.base_line + self.buf.count("\n", 0, exc.pos)
                pending = len(self.buf) - self.pos
                if pending > self.longest:
                    raise self.budget.line_too_long(self.line, what="a JSON value") from None
                # Read as much again as is pending, so a long value is parsed a few times, not
                # once per chunk.
                if self._refill(max(_CHUNK, pending)):
                    continue
                raise InputError(f"invalid JSON ({exc.msg})", line) from None
            except RecursionError:
                raise self.budget.too_deep(self.line) from None
        if end - self.pos > self.longest:
            raise self.budget.line_too_long(self.line, what="a JSON value")
        limit = self.budget.limits.json_depth
        if self.buf.count("{", self.pos, end) + self.buf.count("[", self.pos, end) > limit:
            check_depth(value, self.budget, line=self.line)
        source = self.buf[self.pos:end] if raw else None
        self.pos = end
        if self.pos > _CHUNK:
            self.base_line = self.line
            self.buf, self.pos = self.buf[self.pos:], 0
        return (value, source) if raw else value

    def array(self, raw: bool = False) -> Iterator[Any]:
        """The elements of the array that starts here, one at a time."""
        self.take("[", "a JSON array starting with '['")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value(raw=raw)
            if self.peek() == ",":
                self.pos += 1
                continue
            self.take("]", "',' or ']' between records")
            return

    def end(self) -> None:
        if self.peek() is not None:
            raise InputError("unexpected data after the end of the JSON value", self.line)


def _json_array_records(stream: IO[bytes], budget: Budget) -> Iterator[dict]:
    scanner = JsonScanner(stream, budget)
    if scanner.peek() != "[":
        raise InputError("expected a JSON array of records starting with '['", scanner.line)
    for record in scanner.array():
        if not isinstance(record, dict):
            raise InputError(f"expected a JSON object, got {_json_kind(record)}", scanner.line)
        if len(record) > budget.limits.columns:
            budget.check_columns(len(record), scanner.line, what="a record has", unit="keys")
        yield record
    scanner.end()

