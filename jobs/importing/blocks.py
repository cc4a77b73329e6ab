"""The fast path for canonical CSV files: batches cut from the file's lines as they are.

A CSV whose header already is Zenith's field names, with an id column, is what exports made
for Zenith look like, and the million-row upload people wait for. Parsing every row into a
list at upload only to encode it again as JSON for the workers was most of that upload's
serial time (CSV reader 20 %, JSON 15 %, the row loop 17 % of a profile). Here the upload
cuts the file into runs of whole lines and checks each run, at C speed, for anything the full
parse would refuse, skip or read differently:
- a line with an odd number of quotes (its record may span lines), a NUL byte, a carriage
  return not ending a line;
- a line whose field count is not the header's (a short row, a total line, a blank line);
- a blank line or a row of blank fields (the full parse skips them);
- bytes that are not in the file's encoding.
A run that passes is stored as its lines (payload codec `csv+zlib`, transcoded to UTF-8); the
worker splits each line at the delimiter (all the csv module does with a line that passed),
or reads the run with the csv module when it holds quotes (then each line is one record: the
upload read the run with the csv module too, to count its fields), and writes its rows with
the import's `RowForm`, so its records are exactly those the full
parse gives (tests/importing/test_reading.py holds the files that show it). From the first run that
does not pass, the rest of the file is read by the full parse (`sources.table_rows`), with
its error messages and the file's own line numbers. Either way the upload is still all-or-nothing: a malformed
line 800,000 refuses the whole submission.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import functools
import io
import itertools
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from jobs.engine import payloads
from jobs.importing import sources
from jobs.importing.limits import Budget, LineGuard
from jobs.importing.rows import RowForm

READ_BYTES = 1 << 20
# A run holds at most this many bytes of lines, whatever the batch size: a batch of long lines
# is cut shorter rather than held whole (a batch's count comes from its run).
RUN_BYTES = 16 << 20
FAST_ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "latin-1")  # ASCII-compatible: a "\n" byte is a line end


@dataclasses.dataclass
class CsvRun:
    """`count` records as UTF-8 lines joined by "\\n"; `meta` (shared by a file's runs) says
    how a worker reads them: jobs.engine.payloads.CODEC_CSV_ZLIB."""

    lines: bytes
    count: int
    meta: bytes


def chunker(reopen: Callable[[], IO[bytes]], form: RowForm, *, encoding: str, delimiter: str,
            header_row: int, budget: Budget | None = None) -> Callable[[int], Iterator[list | CsvRun]] | None:
    """`chunks(size)` for a canonical CSV table, or None when its form cannot be applied line by
    line (ids derived from the whole file; a currency column filled only where blank) or its
    encoding is not ASCII-compatible."""
    if (form.derive is not None or (form.currency and "currency" in form.header)
            or encoding not in FAST_ENCODINGS or len(delimiter) != 1):
        return None
    meta = json.dumps({"d": delimiter, **form.as_dict()}, separators=(",", ":")).encode()
    return functools.partial(chunks, reopen, form, meta=meta, encoding=encoding, delimiter=delimiter,
                             header_row=header_row, budget=budget or Budget())


def chunks(reopen: Callable[[], IO[bytes]], form: RowForm, size: int, *, meta: bytes, encoding: str,
           delimiter: str, header_row: int, budget: Budget) -> Iterator[list | CsvRun]:
    """The table's records in chunks of `size`: CsvRuns while the lines pass the checks, then
    lists of canonical rows from the full parse. No line longer than the budget's is read
    (LineGuard: the encodings here are ASCII-compatible), so neither is a field."""
    width = len(form.header)
    sources.set_field_limit(budget)  # quoted runs are read with the csv module too
    stream = io.BufferedReader(LineGuard(reopen(), budget), READ_BYTES)
    offset = 0
    for _ in range(header_row):
        line = stream.readline()
        if line.count(b'"') & 1 or b"\r" in line.rstrip(b"\r\n") or not line.endswith(b"\n"):
            yield from _parsed(reopen, form, size, offset=0, lines_before=0, skip=header_row,
                               encoding=encoding, delimiter=delimiter, budget=budget)
            return
        offset += len(line)
    lines_before = header_row
    check = _checker(delimiter.encode("ascii"), width, encoding)
    pending: list[bytes] = []
    held = 0  # bytes of the pending lines (with their line breaks)
    tail = b""
    eof = False
    while True:
        while len(pending) < size and held < RUN_BYTES and not eof:
            data = stream.read(READ_BYTES)
            if not data:
                eof = True
                if tail:
                    pending.append(tail)
                    held += len(tail) + 1
                break
            data = tail + data
            cut = data.rfind(b"\n")
            if cut < 0:
                tail = data
                continue
            pending.extend(data[:cut].split(b"\n"))
            held += cut + 1
            tail = data[cut + 1:]
        if not pending:
            return
        lines = pending[:size]
        if held > RUN_BYTES:
            ends = list(itertools.accumulate(len(line) + 1 for line in lines))
            lines = lines[:max(1, bisect.bisect_right(ends, RUN_BYTES))]
        del pending[:len(lines)]
        held -= sum(map(len, lines)) + len(lines)
        checked = check(lines)
        if checked is None:
            yield from _parsed(reopen, form, size, offset=offset, lines_before=lines_before, skip=0,
                               encoding=encoding, delimiter=delimiter, budget=budget)
            return
        offset += sum(map(len, lines)) + len(lines)
        lines_before += len(lines)
        yield CsvRun(checked, len(lines), meta)


def _checker(delimiter: bytes, width: int, encoding: str) -> Callable[[list[bytes]], bytes | None]:
    """A run's lines as stored (UTF-8, "\\n"-joined), or None if the full parse must read them."""
    fields_less_one = width - 1
    # A line whose first field is empty or starts with white space (str.strip's, in UTF-8)
    # could be a blank row, which the full parse skips: such lines (a missing id, mostly) are
    # looked at one by one. Searched after each "\n": a pattern anchored with (?m)^ cost six
    # times as much.
    blank_led = re.compile(rb"\n(?:[\s\x1c-\x1f" + re.escape(delimiter) +
                           rb"]|\xc2[\x85\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80)")
    utf8 = encoding in ("utf-8", "utf-8-sig")
    text_delimiter = delimiter.decode("ascii")

    def check(lines: list[bytes]) -> bytes | None:
        run = b"\n".join(lines)
        quoted = b'"' in run
        if quoted:
            # Exports quote every text field: such a run is read with the csv module below, once
            # each line is known to hold whole records (an even number of quotes).
            if any(n & 1 for n in map(bytes.count, lines, itertools.repeat(b'"'))):
                return None
        elif any(n != fields_less_one for n in map(bytes.count, lines, itertools.repeat(delimiter))):
            return None
        if b"\x00" in run:
            return None
        # A "\r" ends a line only before "\n" (or at the end): lines keep it, the csv module
        # reads "a,b\r" as "a,b". Anywhere else the full parse would end a record there.
        if b"\r" in run and run.count(b"\r") != run.count(b"\r\n") + run.endswith(b"\r"):
            return None
        try:
            text = run.decode(encoding if not utf8 else "utf-8")
        except UnicodeDecodeError:
            return None
        if not utf8:
            run = text.encode("utf-8")
        if quoted:
            try:
                rows = list(csv.reader(text.split("\n"), delimiter=text_delimiter))
            except csv.Error:
                return None  # the full parse says what is wrong, with its line numbers
            if (len(rows) != len(lines) or any(n != width for n in map(len, rows))
                    or not all(map(str.strip, map("".join, rows)))):
                return None  # a record of another width, or a blank one: the full parse's rules
            return run
        for match in blank_led.finditer(b"\n" + run):
            start = match.start()  # in `run`: the "\n" prepended shifts by one
            end = run.find(b"\n", start)
            line = run[start:end if end >= 0 else len(run)].decode("utf-8")
            if not line.replace(text_delimiter, "").strip():
                return None
        return run

    return check


def _parsed(reopen: Callable[[], IO[bytes]], form: RowForm, size: int, *, offset: int, lines_before: int,
            skip: int, encoding: str, delimiter: str, budget: Budget) -> Iterator[list]:
    """The rest of the table from byte `offset` by the full parse, in chunks of `size`."""
    stream = reopen()
    stream.seek(offset)
    if offset and encoding == "utf-8-sig":
        encoding = "utf-8"  # the byte-order mark is behind us
    text = sources.text_lines(stream, encoding, budget, line_offset=lines_before)
    sources.set_field_limit(budget)
    # The header too, as the full parse gives it: rows of another width are fitted to it alike.
    rows = sources.table_rows(text, delimiter, len(form.header), skip=skip, is_header=True, encoding=encoding,
                              line_offset=lines_before, header=form.header)
    yield from batched(form.rows(rows), size)


def batched(records: Iterable[Any], size: int) -> Iterator[list]:
    """Lists of `size` records (the last one shorter): itertools.batched, which is Python 3.12's."""
    records = iter(records)
    while chunk := list(itertools.islice(records, size)):
        yield chunk


def decode(data: bytes) -> list[dict]:
    """A `csv+zlib` payload's records (after decompression): jobs.engine.payloads."""
    head, _, body = data.decode("utf-8").partition("\n")
    meta = json.loads(head)
    form = RowForm.from_dict(meta)
    keys = form.keys
    if "\r" in body:
        body = body.replace("\r\n", "\n").removesuffix("\r")
    # The checks left no "\r" but at a line's end, and quotes only in runs whose every line is
    # one record: without quotes, splitting each line at the delimiter is the csv module's
    # reading of it, at a third of the cost.
    if '"' in body:
        # The upload's budget bounded every line; no field is longer than the run itself,
        # whatever limit this process's csv module was left with.
        if csv.field_size_limit() < len(body):
            csv.field_size_limit(len(body))
        rows = csv.reader(body.split("\n"), delimiter=meta["d"])
    else:
        rows = map(str.split, body.split("\n"), itertools.repeat(meta["d"]))
    return [dict(zip(keys, row, strict=True)) if row.__class__ is list else row for row in form.rows(rows)]


def _decode_payload(data: bytes | memoryview) -> list[dict]:
    return decode(zlib.decompress(bytes(data)))


payloads.register_decoder(payloads.CODEC_CSV_ZLIB, _decode_payload)
