"""Rows out of the files people have: delimited text in any common encoding (with preamble
lines above the table), Excel workbooks, and OFX/QFX statements.

Everything streams: text is decoded incrementally, workbooks are read with openpyxl's
read-only mode, and only the first lines are held to sniff the delimiter and header row.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import io
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import IO

from jobs.errors import InputError
from jobs.importing import headers

csv.field_size_limit(1 << 24)  # long memo fields are data, not an attack

SAMPLE_BYTES = 1 << 20
SNIFF_LINES = 60
DELIMITERS = (",", ";", "\t", "|")


def detect_encoding(head: bytes) -> str:
    """BOMs first; then UTF-16 by its zero bytes; then strict UTF-8; else Windows-1252, the
    superset of Latin-1 that Western European banks export."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4:
        even_zero = sum(1 for i in range(0, len(sample), 2) if sample[i] == 0)
        odd_zero = sum(1 for i in range(1, len(sample), 2) if sample[i] == 0)
        half = len(sample) // 2
        if odd_zero > half * 0.6:
            return "utf-16-le"
        if even_zero > half * 0.6:
            return "utf-16-be"
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


@dataclasses.dataclass
class Table:
    """A delimited or spreadsheet table: its header (or None) and an iterator of rows."""

    header: list[str] | None
    rows: Iterator[list[str]]
    header_row: int  # 1-based line (or sheet row) of the header; of the first data row if none
    encoding: str = ""
    delimiter: str = ""


def _text_stream(raw: IO[bytes], encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")


def sniff_delimiter(lines: list[str], preferred: str | None = None) -> str:
    if preferred:
        return preferred
    best, best_score = ",", -1
    for delimiter in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter) if row]
        if not counts:
            continue
        modal, frequency = Counter(counts).most_common(1)[0]
        # Many lines agreeing on many fields: a comma inside "1.036,47" also splits lines,
        # but into fewer fields than the real delimiter does.
        score = frequency * min(modal, 20) if modal > 1 else 0
        if score > best_score:
            best, best_score = delimiter, score
    return best


_NUMBER_OR_DATE = re.compile(r"^[-+(]?\s*[$€£¥]?\s*\d[\d.,'/: -]*\)?-?$")


def _label_cells(row: list[str]) -> bool:
    """A key-value line such as 'Account:,123,Currency:,USD': a summary above the table."""
    cells = [cell.strip() for cell in row if cell.strip()]
    return any(cell.endswith(":") for cell in cells) or any(_NUMBER_OR_DATE.match(cell) for cell in cells)


def find_header(rows: list[list[str]], header_row: int | None, has_header: bool,
                ragged: bool = False) -> tuple[int, bool]:
    """(0-based index of the header row, or of the first data row; whether it is a header).

    The header is the row naming the most known fields (at least two) among rows that hold
    no numbers, dates or 'Label:' cells, preferring one followed by rows of its own width (the
    table proper) over a preamble line that happens to name fields ('Account:,123,Currency:,USD').
    Failing that, the first row of the table proper (the modal field count) if its cells are
    not numbers or dates. `ragged`: rows may be shorter than the header (spreadsheets drop
    trailing empty cells)."""
    if header_row is not None:
        return header_row - 1, has_header
    best: tuple[tuple[bool, int, int], int] | None = None
    for index, row in enumerate(rows):
        named = headers.score(row)
        if named < 2 or _label_cells(row):
            continue
        width = len(row)
        stable = 0
        for following in rows[index + 1:]:
            if not any(cell.strip() for cell in following):
                if stable:
                    break
                continue
            if len(following) == width or (ragged and 1 <= len(following) <= width):
                stable += 1
            else:
                break
        key = (stable > 0, named, stable)
        if best is None or key > best[0]:
            best = (key, index)
    if best is not None:
        return best[1], True
    counts = Counter(len(row) for row in rows if len(row) > 1)
    if not counts:
        return 0, has_header
    modal = counts.most_common(1)[0][0]
    start = next(i for i, row in enumerate(rows) if len(row) == modal)
    if not has_header:
        return start, False
    numeric = sum(1 for cell in rows[start] if cell.strip() and cell.strip()[0].isdigit())
    return start, numeric == 0


def dedupe(header: list[str]) -> list[str]:
    """Repeated column names made distinguishable: ING's 'Währung' after the balance and again
    after the amount become 'Währung' and 'Währung (2)'. Which one a field reads is decided
    by the mapping (jobs.importing.mapping.detect_columns)."""
    seen: Counter = Counter()
    taken = set(header)
    out = []
    for name in header:
        seen[name] += 1
        if name and seen[name] > 1:
            n = seen[name]
            while f"{name} ({n})" in taken:
                n += 1
            name = f"{name} ({n})"
            taken.add(name)
        out.append(name)
    return out


def delimited_table(raw: IO[bytes], *, encoding: str | None = None, delimiter: str | None = None,
                    header_row: int | None = None, has_header: bool = True) -> Table:
    head = raw.peek(SAMPLE_BYTES)[:SAMPLE_BYTES] if hasattr(raw, "peek") else b""
    encoding = encoding or detect_encoding(head)
    text = _text_stream(raw, encoding)
    sample: list[str] = []
    try:
        for _ in range(SNIFF_LINES):
            line = text.readline()
            if not line:
                break
            sample.append(line)
    except UnicodeDecodeError:
        raise InputError(f"the file is not valid {encoding}; give the encoding in the mapping",
                         len(sample) + 1) from None
    if sample and sample[0].startswith("\ufeff"):
        sample[0] = sample[0][1:]
    if not any(line.strip() for line in sample):
        return Table(None, iter(()), 1, encoding, delimiter or ",")  # empty: "No items provided"
    delimiter = sniff_delimiter(sample[min(len(sample) - 1, 3):] if len(sample) > 8 else sample, delimiter)
    sample_rows = list(csv.reader(sample, delimiter=delimiter))
    start, is_header = find_header(sample_rows, header_row, has_header)
    if start >= len(sample_rows):
        raise InputError(f"the header row {start + 1} is past the end of the file")
    header = dedupe([cell.strip() for cell in sample_rows[start]]) if is_header else None
    if header is not None and not any(header):
        raise InputError("the header row is empty", start + 1)
    width = len(sample_rows[start])

    rows = table_rows(itertools.chain(sample, text), delimiter, width, skip=start + (1 if is_header else 0),
                      is_header=is_header, encoding=encoding)
    return Table(header, rows, start + 1, encoding, delimiter)


def table_rows(lines: Iterable[str], delimiter: str, width: int, *, skip: int, is_header: bool, encoding: str,
               line_offset: int = 0) -> Iterator[list[str]]:
    """The data rows of a delimited table read from `lines` (text): the first `skip` records
    (preamble and header) passed over, blank rows and a total line at the end skipped, and
    a row of another width than the header refused. `line_offset`: lines of the file before
    `lines` begin, so that errors name the file's own line numbers."""
    reader = csv.reader(lines, delimiter=delimiter)
    # A record may span lines (a quoted field with line breaks, or a quote never closed
    # that swallows the rest of the file): errors name the line where the record starts.
    # This loop runs once per row of a million-row upload: keep it lean.
    end = line_offset
    try:
        for _ in itertools.islice(reader, skip):
            end = line_offset + reader.line_num
        data_start = end + 1
        for row in reader:
            first = end + 1
            end = line_offset + reader.line_num
            if len(row) != width:
                if not row or not "".join(row).strip():
                    continue
                if len(row) < width and (is_header or first > data_start) and _is_footer(row):
                    continue
                spans = f" in the record on lines {first}-{end} (is a quote not closed?)" if end > first else ""
                raise InputError(f"expected {width} fields as in the header, found {len(row)}{spans}", first)
            if not (row[0].strip() or "".join(row).strip()):
                continue
            yield row
    except UnicodeDecodeError:
        raise InputError(f"bytes that are not {encoding}; give the encoding in the mapping",
                         line_offset + reader.line_num + 1) from None
    except csv.Error as exc:
        raise InputError(f"malformed CSV ({exc})", end + 1) from None


def _is_footer(row: list[str]) -> bool:
    """Exports often end with a summary line ("Kontostand", "Total") shorter than the table."""
    words = " ".join(row).lower()
    return any(word in words for word in ("total", "summe", "saldo", "kontostand", "balance", "solde"))


def xlsx_table(raw: IO[bytes], *, sheet: str | None = None, header_row: int | None = None,
               has_header: bool = True) -> Table:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(raw, read_only=True, data_only=True)
    except Exception as exc:
        raise InputError(f"the Excel workbook could not be opened ({type(exc).__name__})") from None
    if sheet and sheet not in workbook.sheetnames:
        raise InputError(f"no sheet named {sheet!r}; the workbook has {', '.join(workbook.sheetnames)}")
    worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
    cells = worksheet.iter_rows(values_only=True)
    sample = []
    for _ in range(SNIFF_LINES):
        try:
            sample.append([_cell_text(value) for value in next(cells)])
        except StopIteration:
            break
    sample = [_trim(row) for row in sample]
    start, is_header = find_header(sample, header_row, has_header, ragged=True)
    header = dedupe([cell.strip() for cell in sample[start]]) if is_header and start < len(sample) else None

    def rows() -> Iterator[list[str]]:
        width = len(header) if header else None
        for row in sample[start + (1 if is_header else 0):]:
            if any(cell.strip() for cell in row):
                yield _fit(row, width)
        for values in cells:
            row = _trim([_cell_text(value) for value in values])
            if any(cell.strip() for cell in row):
                yield _fit(row, width)
        workbook.close()

    return Table(header, rows(), start + 1, "xlsx", "")


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    return str(value)


def _trim(row: list[str]) -> list[str]:
    while row and not row[-1].strip():
        row = row[:-1]
    return row


def _fit(row: list[str], width: int | None) -> list[str]:
    if width is None:
        return row
    return (row + [""] * width)[:width] if len(row) < width else row[:width] if all(
        not cell.strip() for cell in row[width:]) else row


def ofx_records(raw: IO[bytes], max_bytes: int) -> Iterator[dict]:
    """Transactions of every bank or card statement in an OFX/QFX file (SGML v1 or XML v2).

    The statement is read and parsed here, before any record is taken (at most `max_bytes`;
    statements are small), from memory: ofxtools checks `"b" in source.mode`, which a gzip
    stream (whose mode is an int) fails."""
    from ofxtools.Parser import OFXTree

    content = raw.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise InputError(f"the OFX statement is larger than the upload limit ({max_bytes} bytes)")
    tree = OFXTree()
    try:
        root = tree.parse(io.BytesIO(content))
    except Exception as exc:
        raise InputError(f"the OFX file could not be parsed ({exc})") from None
    statements = [*root.iter("STMTRS"), *root.iter("CCSTMTRS")]
    if not any(True for statement in statements for _ in statement.iter("STMTTRN")):
        raise InputError("the OFX file holds no statement transactions (STMTTRN)")
    return _ofx_transactions(statements)


def _ofx_transactions(statements: list) -> Iterator[dict]:
    for statement in statements:
        currency = statement.findtext("CURDEF") or ""
        account = statement.findtext("BANKACCTFROM/ACCTID") or statement.findtext("CCACCTFROM/ACCTID") or ""
        for entry in statement.iter("STMTTRN"):
            fields = {child.tag: (child.text or "").strip() for child in entry}
            posted = fields.get("DTPOSTED", "")[:8]
            name = fields.get("NAME") or entry.findtext("PAYEE/NAME") or ""
            yield {
                "id": fields.get("FITID", ""),
                "date": f"{posted[:4]}-{posted[4:6]}-{posted[6:8]}" if len(posted) == 8 else posted,
                "amount": fields.get("TRNAMT", ""),
                "currency": (entry.findtext("CURRENCY/CURSYM") or currency).strip(),
                "account": account,
                "counterparty": name,
                "description": fields.get("MEMO", ""),
                "reference": fields.get("CHECKNUM") or fields.get("REFNUM") or "",
            }
