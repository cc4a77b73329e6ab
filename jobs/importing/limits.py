"""What reading one upload or request body may cost: the readers' budgets.

A small file can ask for a great deal: a gzip of zeros inflates a thousandfold, a workbook
declares a sheet of 16,384 x 1,048,576 cells, a single line (or OFX value) holds hundreds of
megabytes, JSON nests until the parser recurses out of stack. Every reader in
jobs.importing (and the streamed JSON body of jobs.api.streaming) therefore reads under a
`Budget`, made once per request from the settings:

- decompressed bytes, as an absolute cap and as a ratio to the compressed bytes read
  (gzip streams as they inflate; the members of an xlsx archive by their declared sizes,
  which zipfile holds them to);
- the length of a line (delimited text, JSON lines), of a quoted field, of one JSON value,
  of an OFX value and of the text of a spreadsheet row;
- the size of what a parser must hold whole: an OFX statement (ofxtools), a workbook's parts
  other than its sheets (openpyxl: shared strings, styles);
- the columns a row actually uses (never a sheet's declared dimension) and the keys of a record;
- the nesting depth of JSON;
- the wall time of the whole reading, checked as the data is read.

Each refusal is a `jobs.errors.LimitExceeded` (a 413, or 400 for nesting) that names the
limit and its setting, raised as soon as the limit is passed, so memory stays near what one
line or record needs. The rows of a job are bounded by ZENITH_MAX_ITEMS_PER_JOB where they are
counted (docs/operations.md, "Limits", lists them all; docs/design.md, "Errors", says why
nothing a client sends may become a 500).
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import io
import json
import re
import time
import zlib
from typing import IO, Any

from jobs.errors import InputError, LimitExceeded, TooDeep

# Inflating up to this much is never refused for its ratio: a small export of repeated rows
# compresses far better than a large one, and costs nothing to read.
RATIO_FLOOR_BYTES = 1 << 20
_INFLATE_CHUNK = 1 << 16

# Encodings in which a byte 0x0A or 0x0D is always a line break, so lines can be measured
# on the bytes (LineGuard) at no cost per line.
_ASCII_LINE_BREAKS = {"utf-8", "utf-8-sig", "cp1252", "latin-1", "iso8859-1", "ascii"} | {
    f"iso8859-{n}" for n in range(2, 16)} | {f"cp125{n}" for n in range(9)}


@dataclasses.dataclass(frozen=True)
class Limits:
    decompressed_bytes: int
    decompression_ratio: int
    line_bytes: int
    columns: int
    json_depth: int
    ofx_bytes: int
    xlsx_part_bytes: int
    parse_seconds: float

    @classmethod
    def from_settings(cls) -> Limits:
        from django.conf import settings

        return cls(decompressed_bytes=settings.ZENITH_MAX_DECOMPRESSED_BYTES,
                   decompression_ratio=settings.ZENITH_MAX_DECOMPRESSION_RATIO,
                   line_bytes=settings.ZENITH_MAX_LINE_BYTES, columns=settings.ZENITH_MAX_COLUMNS,
                   json_depth=settings.ZENITH_MAX_JSON_DEPTH, ofx_bytes=settings.ZENITH_MAX_OFX_BYTES,
                   xlsx_part_bytes=settings.ZENITH_MAX_XLSX_PART_BYTES,
                   parse_seconds=settings.ZENITH_MAX_PARSE_SECONDS)


class Budget:
    """The limits of one request's reading, and its deadline (counted from here)."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits.from_settings()
        self.deadline = time.monotonic() + self.limits.parse_seconds

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            seconds = self.limits.parse_seconds
            raise LimitExceeded(f"reading the input took longer than {seconds:g} seconds",
                                "ZENITH_MAX_PARSE_SECONDS", seconds)

    def check_inflated(self, inflated: int, compressed: int) -> None:
        limits = self.limits
        if inflated > limits.decompressed_bytes:
            raise LimitExceeded(f"the data decompresses to more than {limits.decompressed_bytes:,} bytes",
                                "ZENITH_MAX_DECOMPRESSED_BYTES", limits.decompressed_bytes)
        if inflated > RATIO_FLOOR_BYTES and inflated > limits.decompression_ratio * max(compressed, 1):
            raise LimitExceeded(f"the data decompresses to more than {limits.decompression_ratio} times its "
                                "compressed size", "ZENITH_MAX_DECOMPRESSION_RATIO", limits.decompression_ratio)

    def line_too_long(self, line: int | None = None, what: str = "a line") -> LimitExceeded:
        limit = self.limits.line_bytes
        return LimitExceeded(f"{what} is longer than {limit:,} bytes", "ZENITH_MAX_LINE_BYTES", limit, line)

    def check_columns(self, count: int, line: int | None = None, what: str = "a row has",
                      unit: str = "columns") -> None:
        if count > self.limits.columns:
            raise LimitExceeded(f"{what} {count:,} {unit}", "ZENITH_MAX_COLUMNS", self.limits.columns, line)

    def too_deep(self, line: int | None = None) -> TooDeep:
        limit = self.limits.json_depth
        return TooDeep(f"JSON nested deeper than {limit} levels", "ZENITH_MAX_JSON_DEPTH", limit, line)

    def check_archive(self, members: list, compressed_total: int) -> None:
        """An archive (xlsx) by its members' declared sizes, which zipfile's reader does not
        let a member exceed (it stops at the declared size and then fails its CRC)."""
        self.check_inflated(sum(member.file_size for member in members), compressed_total)
        for member in members:
            self.check_inflated(member.file_size, member.compress_size)


def line_breaks_are_bytes(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in _ASCII_LINE_BREAKS
    except LookupError:
        return False


class _Counting(io.RawIOBase):
    """Counts the compressed bytes gzip takes from the file (for the ratio)."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class Inflated(io.RawIOBase):
    """The content of a gzip stream, refused (LimitExceeded) once it passes the absolute cap
    or the ratio to what was read of the compressed stream, before more is inflated."""

    def __init__(self, compressed: IO[bytes], budget: Budget):
        self.counter = _Counting(compressed)
        self.gzip = gzip.GzipFile(fileobj=self.counter, mode="rb")
        self.budget = budget
        self.inflated = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            # At most a chunk per call, checked before the next: a caller asking for a
            # gigabyte at once would otherwise get it inflated before any check.
            count = self.gzip.readinto(memoryview(buffer)[:_INFLATE_CHUNK])
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"the gzip data is damaged ({exc})") from None
        self.inflated += count
        self.budget.check_inflated(self.inflated, self.counter.count)
        return count

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.inflated

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Forward only, by inflating (within the budget): a reader resumes a fresh stream at a
        byte it has reached before (jobs.importing.blocks)."""
        target = offset + (self.inflated if whence == io.SEEK_CUR else 0)
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < self.inflated:
            raise io.UnsupportedOperation("a gzip stream is read forward only")
        scratch = bytearray(1 << 16)
        while self.inflated < target:
            view = memoryview(scratch)[:min(len(scratch), target - self.inflated)]
            if not self.readinto(view):
                break
        return self.inflated


class LineGuard(io.RawIOBase):
    """A binary stream in which no line may be longer than the budget's: measured on the bytes
    as they pass (an encoding where 0x0A and 0x0D are only line breaks), so that no reader
    above ever assembles a longer line, and nothing is done per line. Reads at most the limit
    at a time, so that a line within one read is within the limit too."""

    def __init__(self, raw: IO[bytes], budget: Budget, line_offset: int = 0):
        self.raw = raw
        self.budget = budget
        self.limit = budget.limits.line_bytes
        self.run = 0  # bytes since the last line break
        self.lines = line_offset  # line breaks passed (for the error's line number)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(min(len(buffer), self.limit))
        if not data:
            return 0
        last = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if last < 0:
            self.run += len(data)
            if self.run > self.limit:
                raise self.budget.line_too_long(self.lines + 1)
        else:
            first = min(pos for pos in (data.find(b"\n"), data.find(b"\r")) if pos >= 0)
            if self.run + first > self.limit:
                raise self.budget.line_too_long(self.lines + 1)
            self.lines += data.count(b"\n")
            self.run = len(data) - last - 1
        buffer[:len(data)] = data
        return len(data)


def guarded_lines(text: IO[str], budget: Budget, line_offset: int = 0):
    """Lines of a text stream none of which is longer than the budget's (characters): for
    encodings whose line breaks are not single bytes (UTF-16), one bounded readline at a time."""
    limit = budget.limits.line_bytes
    readline = text.readline
    number = line_offset
    while True:
        line = readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit:
            raise budget.line_too_long(number)
        yield line


def depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value (a scalar is 0, {} or [] is 1), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def check_depth(value: Any, budget: Budget, source: str | None = None, line: int | None = None) -> None:
    """Refuses a value nested deeper than the budget; `source`, its JSON text, settles the
    usual case at C speed (no more brackets than the limit cannot nest deeper)."""
    limit = budget.limits.json_depth
    if source is not None and source.count("{") + source.count("[") <= limit:
        return
    if depth(value) > limit:
        raise budget.too_deep(line)


def loads(text: str | bytes, budget: Budget | None = None) -> Any:
    """json.loads within the nesting budget: a JSON text from a form field or a request body.
    A JSONDecodeError is left to the caller, who words it for its field."""
    budget = budget or Budget()
    try:
        value = json.loads(text)
    except RecursionError:
        raise budget.too_deep() from None
    check_depth(value, budget, text if isinstance(text, str) else None)
    return value


def read_whole(raw: IO[bytes], budget: Budget, what: str) -> bytes:
    """A statement's bytes (OFX, MT940, CAMT: their parsers read them whole), within
    ZENITH_MAX_OFX_BYTES, and refused when a value or line runs past the line limit (searched
    from each tag edge or line end only, so linear in the file)."""
    limit = budget.limits.ofx_bytes
    parts, size = [], 0
    while size <= limit and (part := raw.read(1 << 20)):  # in parts: read(limit) would reserve it all
        parts.append(part)
        size += len(part)
    if size > limit:
        raise LimitExceeded(f"the {what} statement is larger than {limit:,} bytes", "ZENITH_MAX_OFX_BYTES", limit)
    content = b"".join(parts)
    longest = budget.limits.line_bytes
    if re.search(rb"(?:\A|[<>\n])[^<>\n]{%d}" % (longest + 1), content):
        raise budget.line_too_long(what=f"a {what} value or line")
    budget.check_time()
    return content
