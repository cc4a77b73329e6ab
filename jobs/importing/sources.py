"""Rows out of the files people have: delimited text in any common encoding (with preamble
lines above the table), Excel workbooks, and OFX/QFX statements.

Everything streams: text is decoded incrementally, a workbook's sheet is read row by row from
its XML as it inflates (openpyxl opens the workbook and decodes the values), and only the
first lines are held to sniff the delimiter and header row. Each reader works within the
request's budget (jobs.importing.limits): line and field length, columns actually used, and
the wall time; an OFX statement, parsed whole, is bounded by its size.
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

from jobs.datatypes.fields import ISO_4217
from jobs.errors import InputError, LimitExceeded
from jobs.importing import headers
from jobs.importing.limits import Budget, LineGuard, guarded_lines, line_breaks_are_bytes

SAMPLE_BYTES = 1 << 20
SNIFF_LINES = 60
DELIMITERS = (",", ";", "\t", "|")


def detect_encoding(head: bytes) -> str:
    """BOMs first; then UTF-16 by its zero bytes; then strict UTF-8; then Windows-1251 when the
    text is Cyrillic by its shape (`looks_cyrillic`), Windows-1257 when it is Baltic by its
    letters (`looks_baltic`); else Windows-1252, the superset of
    Latin-1 that Western European banks export."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4:
        even_zero = sample[0::2].count(0)
        odd_zero = sample[1::2].count(0)
        half = len(sample) // 2
        # UTF-16 text has its zero bytes on one side only: bytes that are mostly zero on both
        # (a file of NULs) are binary, and are refused as such, not decoded as UTF-16.
        if odd_zero > half * 0.6 and even_zero < half * 0.1:
            return "utf-16-le"
        if even_zero > half * 0.6 and odd_zero < half * 0.1:
            return "utf-16-be"
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if looks_cyrillic(head):
        return "cp1251"
    if looks_baltic(head):
        return "cp1257"
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def looks_cyrillic(head: bytes) -> bool:
    """Whether 8-bit text is Windows-1251 (Russian, Ukrainian, Bulgarian exports) rather than
    Windows-1252. Both decode any byte, so the choice is by shape: in Western text the letters
    above ASCII are accents inside Latin words ("Empfänger": one high byte between ASCII
    letters), while in Cyrillic text every letter of a word is a high byte. So: at least 8
    high letters, and most of them in runs of three or more (read as cp1252, "Ïðèõîä")."""
    letters = 0
    in_runs = 0
    run = 0
    for byte in head[:SAMPLE_BYTES] + b" ":
        # 0xC0-0xFF: А-я in cp1251 (À-ÿ in cp1252); 0xA8/0xB8: Ё/ё
        if byte >= 0xC0 or byte in (0xA8, 0xB8):
            run += 1
            continue
        letters += run
        if run >= 3:
            in_runs += run
        run = 0
    return letters >= 8 and in_runs >= 0.6 * letters


def looks_baltic(head: bytes) -> bool:
    """Whether 8-bit text is Windows-1257 (Lithuanian, Latvian, Estonian exports) rather than
    Windows-1252. The bytes of š, ž, Š, Ž in cp1257 are ð, þ, Ð, Þ in cp1252, letters of no
    Western language but Icelandic; Baltic text is full of them ("už", "mokesčiai" has č and
    i, "išankstinis"). So: at least 3 of them, and a fifth of the text's high letters."""
    sample = head[:SAMPLE_BYTES]
    letters = sum(1 for byte in sample if byte >= 0xC0)
    marked = sum(sample.count(byte) for byte in (b"\xf0", b"\xfe", b"\xd0", b"\xde"))
    return marked >= 3 and marked * 5 >= letters


@dataclasses.dataclass
class Table:
    """A delimited or spreadsheet table: its header (or None) and an iterator of rows."""

    header: list[str] | None
    rows: Iterator[list[str]]
    header_row: int  # 1-based line (or sheet row) of the header; of the first data row if none
    encoding: str = ""
    delimiter: str = ""
    # What the lines above the header say of the whole file: "account", "currency".
    preamble: dict = dataclasses.field(default_factory=dict)
    # Quotes inside quoted fields left as they are ('"UAB "Naktida""'): read by `loose_fields`.
    bare_quotes: bool = False


class BadRow(list):
    """A row the table cannot read as the header says (more fields than the header with some
    of the extra ones filled, or several fewer): it becomes a record that fails alone with
    `problem`, never a refusal of the file (issue 19)."""

    problem = ""


def bad_row(row: list[str], problem: str) -> BadRow:
    out = BadRow(row)
    out.problem = problem
    return out


# Labels of the lines above a table that name the holder's account or the file's currency
# ("Account Number: 1234", "Konto;DE12 ...", "IBAN;DE27 ...", "Currency: USD").
_ACCOUNT_LABELS = {"account", "accountnumber", "accountno", "accountid", "iban", "konto", "kontonummer",
                   "girokonto", "auftragskonto", "compte", "numerodecompte", "cuenta", "numerodecuenta", "rekening",
                   "rekeningnummer", "conto", "numeroconto", "conta", "ibanrekening", "kontonr", "accountiban",
                   "kontoiban", "ibankonto", "transactionaccount", "transaktionskonto", "bankgiro",
                   "номерсчета", "счет", "номер", "номеркарты", "cardnumber", "saskaitosnr", "saskaitosnumeris"}
_CURRENCY_LABELS = {"currency", "waehrung", "wahrung", "devise", "monnaie", "moneda", "divisa", "valuta", "munt",
                    "moeda", "accountcurrency", "kontowaehrung", "валюта", "валютасчета"}
_LABEL_THEN_VALUE = re.compile(r"^([^\d:]+?)\s+(\d.*)$")  # words, then a value starting with a digit
# An account number, an IBAN, or a card number masked as banks print it (462235******0069)
_ACCOUNT_VALUE = re.compile(r"^(?=.*\d)[A-Za-z0-9][A-Za-z0-9 /.\-*]{3,40}$")


def read_preamble(rows: list[list[str]]) -> dict:
    """The holder's account and the currency that the lines above the header state, each
    only when stated once (a summary of several accounts names no one of them): as "Label:
    value", a label cell followed by its value, a label and a value starting with a digit
    in one cell ("transactionaccount 123 123 123"), or a row of labels over a row of values
    (VTB's "Выписка по счету/карте;Номер" over "Карта ...;'462235******0069"), for CSV and
    spreadsheets alike. A leading apostrophe (a spreadsheet's mark of text) is not part of
    a value."""
    found: dict[str, set[str]] = {"account": set(), "currency": set()}
    above: list[str] = []
    for row in rows:
        cells = [cell.strip().lstrip("'") for cell in row]
        if above and not any(ch.isdigit() for label in above for ch in label):
            for label, value in zip(above, cells, strict=False):
                key = headers.normalize(label)
                if key in _ACCOUNT_LABELS and _ACCOUNT_VALUE.match(value):
                    found["account"].add(value)
                elif key in _CURRENCY_LABELS and value.upper() in ISO_4217:
                    found["currency"].add(value.upper())
        above = cells if any(cells) else []
        for i, cell in enumerate(cells):
            label, colon, rest = cell.partition(":")
            if not colon and (spaced := _LABEL_THEN_VALUE.match(cell)):
                # "transactionaccount 123 123 123": label and value in one cell (Handelsbanken)
                label, colon, rest = spaced.group(1), " ", spaced.group(2)
            key = headers.normalize(label)
            value = rest.strip() if colon and rest.strip() else next((c for c in cells[i + 1:] if c), "")
            if key in _ACCOUNT_LABELS and _ACCOUNT_VALUE.match(value):
                found["account"].add(value)
            elif key in _CURRENCY_LABELS and value.strip().upper() in ISO_4217:
                found["currency"].add(value.strip().upper())
    return {field: values.pop() for field, values in found.items() if len(values) == 1}


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


def text_lines(raw: IO[bytes], encoding: str, budget: Budget, line_offset: int = 0) -> Iterator[str]:
    """The lines of a binary stream decoded, none longer than the budget allows: measured on
    the bytes where a line break is one byte (no cost per line), else one bounded readline at a
    time. `line_offset`: lines before the stream's start, for the error's line number."""
    if line_breaks_are_bytes(encoding):
        return iter(_text_stream(io.BufferedReader(LineGuard(raw, budget, line_offset), 1 << 16), encoding))
    return guarded_lines(_text_stream(raw, encoding), budget, line_offset)


def delimited_table(raw: IO[bytes], *, encoding: str | None = None, delimiter: str | None = None,
                    header_row: int | None = None, has_header: bool = True, budget: Budget | None = None) -> Table:
    budget = budget or Budget()
    head = raw.peek(SAMPLE_BYTES)[:SAMPLE_BYTES] if hasattr(raw, "peek") else b""
    encoding = encoding or detect_encoding(head)
    text = text_lines(raw, encoding, budget)
    sample: list[str] = []
    held = 0
    try:
        # At most SNIFF_LINES lines, and about SAMPLE_BYTES of them once there are a few.
        for line in text:
            sample.append(line)
            held += len(line)
            if len(sample) >= SNIFF_LINES or (held > SAMPLE_BYTES and len(sample) >= 3):
                break
    except UnicodeDecodeError:
        raise InputError(f"the file is not valid {encoding}; give the encoding in the mapping",
                         len(sample) + 1) from None
    if sample and sample[0].startswith("\ufeff"):
        sample[0] = sample[0][1:]
    if not any(line.strip() for line in sample):
        return Table(None, iter(()), 1, encoding, delimiter or ",")  # empty: "No items provided"
    set_field_limit(budget)
    try:
        delimiter = sniff_delimiter(sample[min(len(sample) - 1, 3):] if len(sample) > 8 else sample, delimiter)
        sample_rows = list(csv.reader(sample, delimiter=delimiter))
    except csv.Error as exc:
        raise _csv_error(exc, 1) from None
    start, is_header = find_header(sample_rows, header_row, has_header)
    if start >= len(sample_rows):
        raise InputError(f"the header row {start + 1} is past the end of the file")
    header = dedupe([cell.strip() for cell in sample_rows[start]]) if is_header else None
    if header is not None and not any(header):
        raise InputError("the header row is empty", start + 1)
    width = len(sample_rows[start])
    budget.check_columns(width, start + 1)

    bare = has_bare_quotes(sample[start:], sample_rows[start:], delimiter)
    rows = table_rows(itertools.chain(sample, text), delimiter, width, skip=start + (1 if is_header else 0),
                      is_header=is_header, encoding=encoding, header=header, bare_quotes=bare)
    return Table(header, rows, start + 1, encoding, delimiter, read_preamble(sample_rows[:start]), bare)


def loose_fields(line: str, delimiter: str) -> list[str] | None:
    """The fields of one line read as exports with unescaped quotes mean them: inside a quoted
    field a quote closes it only before the delimiter or the line's end ('"UAB "Naktida""' is
    UAB "Naktida"); a doubled quote is one quote, as in RFC 4180. None when a quoted field runs
    past the line (a field with a line break: the caller joins the next line)."""
    line = line.rstrip("\r\n")
    fields: list[str] = []
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == '"':
            i += 1
            text: list[str] = []
            while True:
                if i >= n:
                    return None
                char = line[i]
                if char != '"':
                    text.append(char)
                    i += 1
                    continue
                after = line[i + 1] if i + 1 < n else ""
                if after in ("", delimiter):
                    i += 1
                    break
                if after == '"' and (line[i + 2] if i + 2 < n else "") not in ("", delimiter):
                    text.append('"')  # an escaped quote
                    i += 2
                    continue
                text.append('"')  # a bare quote, or a bare one before the closing quote
                i += 1
            end = line.find(delimiter, i)
            fields.append("".join(text) + (line[i:] if end < 0 else line[i:end]))
        else:
            end = line.find(delimiter, i)
            fields.append(line[i:] if end < 0 else line[i:end])
        if end < 0:
            return fields
        i = end + 1


def has_bare_quotes(lines: list[str], rows: list[list[str]], delimiter: str) -> bool:
    """Whether the sampled table quotes fields without escaping the quotes inside them: a
    line whose cells hold a quote and which `loose_fields` reads otherwise than csv does."""
    if len(lines) != len(rows):  # a record spans lines: csv's reading stands
        return False
    return any('"' in "".join(row) and loose_fields(line, delimiter) not in (None, row)
               for line, row in zip(lines, rows, strict=True))


class LooseReader:
    """csv.reader's interface (rows, `line_num`) over `loose_fields`; a quoted field with line
    breaks takes the following lines, up to LOOSE_SPAN of them, else csv reads the record."""

    def __init__(self, lines: Iterable[str], delimiter: str) -> None:
        self.lines, self.delimiter, self.line_num = iter(lines), delimiter, 0

    def __iter__(self) -> LooseReader:
        return self

    def __next__(self) -> list[str]:
        record = next(self.lines)
        self.line_num += 1
        for _ in range(LOOSE_SPAN):
            fields = loose_fields(record, self.delimiter)
            if fields is not None:
                return fields if record.strip("\r\n") else []
            try:
                record += next(self.lines)
            except StopIteration:
                break
            self.line_num += 1
        return next(csv.reader([record], delimiter=self.delimiter), [])


LOOSE_SPAN = 50


def table_rows(lines: Iterable[str], delimiter: str, width: int, *, skip: int, is_header: bool, encoding: str,
               line_offset: int = 0, header: list[str] | None = None,
               bare_quotes: bool = False) -> Iterator[list[str]]:
    """The data rows of a delimited table read from `lines` (text): the first `skip` records
    (preamble and header) passed over, blank rows and a total line at the end skipped.
    A row of another width than the header is read when `fit_row` can make it the header's
    width without doubt (a `RepairedRow` when that took more than dropping or adding empty
    fields); any other is a `BadRow`, which fails alone: never a refusal of the file (issue 19).
    Only a record of the wrong width that spans lines and runs to the end of the file (a quote
    never closed, which swallowed every row after it) refuses the file.
    `line_offset`: lines of the file before `lines` begin, so that errors name the file's
    own line numbers. `bare_quotes`: the file leaves quotes inside quoted fields unescaped
    (has_bare_quotes), so its lines are read by `loose_fields`."""
    unnamed_from = width
    if header is not None:
        while unnamed_from and not header[unnamed_from - 1]:
            unnamed_from -= 1
    reader = LooseReader(lines, delimiter) if bare_quotes else csv.reader(lines, delimiter=delimiter)
    # A record may span lines (a quoted field with line breaks, or a quote never closed
    # that swallows the rest of the file): errors name the line where the record starts.
    # This loop runs once per row of a million-row upload: keep it lean.
    end = line_offset
    last_text = (header is not None and bool(header[-1])
                 and headers.field_for(header[-1]) not in _NOT_TEXT)
    merged: dict[int, int] = {}  # fit_row: which field held missing ones quoted together
    pending: list[str] | None = None  # a record of another width spanning lines: refused if it runs to the end
    span = (0, 0, 0)
    try:
        for _ in itertools.islice(reader, skip):
            end = line_offset + reader.line_num
        data_start = end + 1
        for row in reader:
            first = end + 1
            end = line_offset + reader.line_num
            if pending is not None:
                yield pending
                pending = None
            if len(row) != width:
                if not row or not "".join(row).strip():
                    continue
                if len(row) < width and (is_header or first > data_start) and _is_footer(row):
                    continue
                fitted = fit_row(row, width, unnamed_from, delimiter, last_text, merged)
                if fitted is None:
                    spans = f"the record on lines {first}-{end}" if end > first else f"line {first}"
                    fitted = bad_row(row, f"{spans} has {len(row)} fields where the header has {width}"
                                          + (" (the extra ones are not empty)" if len(row) > width else "")
                                          + ("; is a quote not closed?" if end > first else "")
                                          + "; the row was not read")
                if fitted.__class__ is RepairedRow:
                    fitted.note = f"{'lines' if end > first else 'line'} {first}{f'-{end}' if end > first else ''}: " \
                                  f"{fitted.note}"
                if end > first:
                    # Held until another record follows: one that runs to the end of the file is a
                    # quote never closed, which swallowed every row after it.
                    pending, span = fitted, (first, end, len(row))
                    continue
                if isinstance(fitted, BadRow):
                    yield fitted
                    continue
                row = fitted
            if not (row[0].strip() or "".join(row).strip()):
                continue
            yield row
        if pending is not None:
            first, end, count = span
            raise InputError(f"expected {width} fields as in the header, found {count} in the record on "
                             f"lines {first}-{end} (is a quote not closed?)", first)
    except UnicodeDecodeError:
        raise InputError(f"bytes that are not {encoding}; give the encoding in the mapping",
                         line_offset + reader.line_num + 1) from None
    except csv.Error as exc:
        raise _csv_error(exc, end + 1) from None


# Header fields whose column cannot be the continuation of a text split over several fields.
_NOT_TEXT = frozenset({"id", "date", "value_date", "date_fallback", "amount", "debit", "credit", "currency"})


class RepairedRow(list):
    """A row of another width than the header read by a rule that leaves no doubt (fit_row);
    `note` says how, and the import counts such rows with it (issue 19)."""

    note = ""


def fit_row(row: list[str], width: int, unnamed_from: int, delimiter: str, last_text: bool,
            merged: dict[int, int] | None = None) -> list[str] | None:
    """A row of another width than the header, made the header's width where the way to do it
    is unambiguous; None otherwise (the row then fails alone, never the file).

    - wider, the extra fields empty: they are dropped;
    - wider, the header's last column a named text column: the extra fields continue it (a
      bank that splits a long text over several fields, Livebank's "Umsatztext"), joined;
    - one field fewer, or fewer where the header's columns have no name: empty ones added;
    - fewer, and exactly one field holds exactly as many delimiters as fields are missing: that
      field was the missing ones quoted together (Danske's ",Vilnius08500,LT" for Address, City
      and Country), split; when several fields could be it, the one that was in the file's
      earlier rows (`merged`: missing count -> field position, kept across a file's rows);
    - fewer, and the row ends in an empty field: a row the bank closed early (Swedbank omits
      its empty trailing columns), empty ones added."""
    count = len(row)
    if count > width:
        if not "".join(row[width:]).strip():
            return row[:width]
        if last_text:
            joined = " ".join(cell.strip() for cell in row[width - 1:] if cell.strip())
            return _repaired(row[:width - 1] + [joined], f"its {count - width} extra field(s) continue the last column")
        return None
    if count + 1 == width or count >= unnamed_from:
        return row + [""] * (width - count)
    missing = width - count
    holders = [i for i, cell in enumerate(row) if cell.count(delimiter) == missing]
    if len(holders) > 1 and merged is not None and merged.get(missing) in holders:
        holders = [merged[missing]]  # the field that held them in the file's earlier rows
    if len(holders) == 1:
        i = holders[0]
        if merged is not None:
            merged[missing] = i
        return _repaired(row[:i] + row[i].split(delimiter) + row[i + 1:],
                         f"field {i + 1} held {missing + 1} fields quoted together")
    if not row[-1].strip():
        return _repaired(row + [""] * missing, f"its last {missing} column(s) were left out (read as empty)")
    return None


def _repaired(row: list[str], note: str) -> RepairedRow:
    out = RepairedRow(row)
    out.note = note
    return out


def set_field_limit(budget: Budget) -> None:
    """The csv module's longest field, the line limit: a quoted field spanning lines is held
    whole like a line (the setting is the process's, and every reader sets the same)."""
    csv.field_size_limit(budget.limits.line_bytes)


def _csv_error(exc: csv.Error, line: int) -> InputError:
    if "field larger than field limit" in str(exc):
        limit = csv.field_size_limit()
        return LimitExceeded(f"a field is longer than {limit:,} characters", "ZENITH_MAX_LINE_BYTES", limit, line)
    return InputError(f"malformed CSV ({exc})", line)


def _is_footer(row: list[str]) -> bool:
    """Exports often end with a summary line ("Kontostand", "Total") shorter than the table."""
    words = " ".join(row).lower()
    return any(word in words for word in ("total", "summe", "saldo", "kontostand", "balance", "solde"))


# Excel's last row: a sheet numbering its rows beyond it was not written for Excel.
XLSX_MAX_ROW = 1_048_576
XLSX_MAX_NESTING = 32  # of the sheet's XML elements; a worksheet needs about six
_WORKSHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"


def xlsx_table(raw: IO[bytes], *, sheet: str | None = None, header_row: int | None = None,
               has_header: bool = True, budget: Budget | None = None) -> Table:
    """The rows of a workbook's sheet (the first, or `sheet`).

    The archive is checked first by its members' declared sizes: sheets are streamed (the
    decompression budget), every other part is read whole by openpyxl (shared strings, styles)
    and must fit ZENITH_MAX_XLSX_PART_BYTES. The sheet is then read row by row by `_sheet_rows`,
    never through the sheet's declared dimension."""
    import zipfile

    import openpyxl

    budget = budget or Budget()
    try:
        with zipfile.ZipFile(raw) as archive:
            members = archive.infolist()
            budget.check_archive(members, sum(member.compress_size for member in members))
            _check_whole_parts(archive, members, budget)
        raw.seek(0)
        workbook = openpyxl.load_workbook(raw, read_only=True, data_only=True)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"the Excel workbook could not be opened ({type(exc).__name__})") from None
    if sheet and sheet not in workbook.sheetnames:
        raise InputError(f"no sheet named {sheet!r}; the workbook has {', '.join(workbook.sheetnames)}")
    worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
    cells = _sheet_rows(workbook, worksheet, budget)
    # The first SNIFF_LINES rows by their row numbers (empty ones as []), as find_header and
    # a mapping's header_row count them.
    sample: list[list[str]] = []
    following: list[list[str]] = []
    for number, row in cells:
        if number > SNIFF_LINES:
            following.append(row)
            break
        sample.extend([] for _ in range(number - 1 - len(sample)))
        sample.append(row)
    start, is_header = find_header(sample, header_row, has_header, ragged=True)
    header = dedupe([cell.strip() for cell in sample[start]]) if is_header and start < len(sample) else None

    def rows() -> Iterator[list[str]]:
        width = len(header) if header else None
        for row in itertools.chain(sample[start + (1 if is_header else 0):], following):
            if any(cell.strip() for cell in row):
                yield _fit(row, width)
        for _, row in cells:
            if any(cell.strip() for cell in row):
                yield _fit(row, width)
        workbook.close()

    return Table(header, rows(), start + 1, "xlsx", "", read_preamble(sample[:start]))


def _check_whole_parts(archive, members: list, budget: Budget) -> None:
    """Every part but the worksheets is parsed whole by openpyxl: each must fit the budget."""
    import xml.etree.ElementTree as ET

    limit = budget.limits.xlsx_part_bytes
    by_name = {member.filename: member for member in members}
    sheets = {name for name in by_name if name.startswith("xl/worksheets/")}
    manifest = by_name.get("[Content_Types].xml")
    if manifest is not None and manifest.file_size <= limit:
        try:
            root = ET.fromstring(archive.read(manifest))
        except ET.ParseError:
            root = None
        if root is not None:
            sheets |= {str(part.get("PartName", "")).lstrip("/") for part in root
                       if part.get("ContentType") == _WORKSHEET_TYPE}
    for member in members:
        if member.filename not in sheets and member.filename.endswith((".xml", ".rels")) \
                and member.file_size > limit:
            raise LimitExceeded(f"the workbook part {member.filename} is larger than {limit:,} bytes",
                                "ZENITH_MAX_XLSX_PART_BYTES", limit)


def _sheet_rows(workbook, worksheet, budget: Budget) -> Iterator[tuple[int, list[str]]]:
    """(row number, cell texts up to the last used cell) for each row of the sheet that holds a
    value, read from the sheet's XML as it is inflated (`_SheetXml`).

    openpyxl's own readers pad every row to the sheet's declared dimension (which a 5 KB file
    can declare as 16,384 columns by a million rows), make every row number up to the last,
    and build each row's elements before reading them; here nothing but the values is kept."""
    try:
        reader = _SheetXml(workbook, worksheet._shared_strings, budget)
        source = worksheet._get_source()
    except Exception as exc:
        raise InputError(f"the sheet could not be read ({type(exc).__name__})") from None
    try:
        while True:
            budget.check_time()
            chunk = source.read(1 << 16)
            reader.feed(chunk)
            yield from reader.take_rows()
            if not chunk:
                return
    except InputError:
        raise
    except Exception as exc:
        # Malformed XML, a shared string that is not there, a number that is not one.
        raise InputError(f"the sheet could not be read ({type(exc).__name__}: {_shorter(str(exc))})",
                         reader.number or None) from None
    finally:
        source.close()


class _SheetXml:
    """A worksheet's XML read with expat, event by event: rows come out as lists of cell
    texts, and nothing else is held (no element tree, no padding, no empty rows).

    Values are decoded as openpyxl's `WorkSheetParser.parse_cell` does with data_only (shared
    strings, numbers, dates by their cell style, booleans, inline strings without phonetic
    runs), with its helpers; openpyxl is pinned in requirements.txt.

    Bounded as it goes: a value in a column past ZENITH_MAX_COLUMNS, a cell's text or any
    stretch of XML without an event longer than ZENITH_MAX_LINE_BYTES, elements nested deeper
    than a worksheet's, a row number outside Excel's, and a DTD (a worksheet has none) are
    refused. The handlers run for every element of a million-row sheet: keep them lean."""

    def __init__(self, workbook, shared_strings, budget: Budget):
        import xml.parsers.expat

        from openpyxl.utils.datetime import from_excel, from_ISO8601
        from openpyxl.worksheet._reader import _cast_number
        from openpyxl.xml.constants import SHEET_MAIN_NS

        self.shared = shared_strings
        self.date_styles = workbook._date_formats
        self.timedelta_styles = workbook._timedelta_formats
        self.epoch = workbook.epoch
        self.from_excel, self.from_iso, self.cast_number = from_excel, from_ISO8601, _cast_number
        self.budget = budget
        self.columns = budget.limits.columns
        self.longest = budget.limits.line_bytes
        self.row_name, self.cell_name, self.value_name = (f"{SHEET_MAIN_NS}}}{local}" for local in ("row", "c", "v"))
        self.parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
        self.parser.buffer_text = True
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._text
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.column_numbers: dict[str, int] = {}
        self.depth = 0
        self.number = 0  # the row being read
        self.column = 0
        self.values: list[tuple[int, object]] = []
        self.row_chars = 0  # text read from the sheet for the row (shared strings are held anyway)
        self.rows: list[tuple[int, list[str]]] = []
        self.cell: list | None = None  # [column, type, style, texts, their length]
        self.path: list[str] = []  # local names of the elements open inside the cell
        self.collecting = False
        self.active = False
        self.quiet = 0

    def feed(self, chunk: bytes) -> None:
        self.active = False
        self.parser.Parse(chunk, not chunk)
        self.quiet = 0 if self.active else self.quiet + len(chunk)
        if self.quiet > self.longest:
            raise self.budget.line_too_long(self.number or None, what="a stretch of the sheet's XML")

    def take_rows(self) -> list[tuple[int, list[str]]]:
        rows, self.rows = self.rows, []
        return rows

    def _doctype(self, *args) -> None:
        raise InputError("the sheet's XML declares a DTD, which a worksheet never has")

    def _start(self, name: str, attrs: dict) -> None:
        self.active = True
        self.depth += 1
        if self.depth > XLSX_MAX_NESTING:
            raise InputError("the sheet's XML is nested deeper than a worksheet's")
        if self.cell is not None:
            if name == self.value_name:
                self.path.append("v")
                self.collecting = True
                return
            # The text runs of an inline string: <is><t>, <is><r><t>; not phonetic runs (<rPh>).
            local = name.rpartition("}")[2]
            self.path.append(local)
            self.collecting = local == "t" and self.path[0] == "is" and "rPh" not in self.path
        elif name == self.cell_name:
            given = attrs.get("r")
            if given:
                letters = given.rstrip("0123456789")
                column = self.column_numbers.get(letters)
                if column is None:
                    column = self.column_numbers[letters] = _column_number(letters)
                self.column = column
            else:
                self.column += 1
            self.cell = [self.column, attrs.get("t", "n"), attrs.get("s"), [], 0]
        elif name == self.row_name:
            given = attrs.get("r")
            self.number = int(given) if given else self.number + 1
            if not 1 <= self.number <= XLSX_MAX_ROW:
                raise InputError(f"row number {self.number} is outside Excel's 1-{XLSX_MAX_ROW:,}")
            self.column = 0
            self.values = []
            self.row_chars = 0

    def _text(self, data: str) -> None:
        self.active = True
        if self.collecting:
            cell = self.cell
            cell[3].append(data)
            cell[4] += len(data)
            if cell[4] > self.longest:
                raise self.budget.line_too_long(self.number, what="a cell")

    def _end(self, name: str) -> None:
        self.active = True
        self.depth -= 1
        if self.path:
            self.path.pop()
            self.collecting = False
        elif self.cell is not None:
            column, kind, style, texts, chars = self.cell
            self.cell = None
            self.row_chars += chars
            if self.row_chars > self.longest:  # a row is held whole, like a line
                raise self.budget.line_too_long(self.number, what="a row's text")
            value = self._value(kind, style, texts)
            if value is not None:
                if column > self.columns:
                    raise LimitExceeded(f"a row has a value in column {column:,}", "ZENITH_MAX_COLUMNS",
                                        self.columns, self.number)
                self.values.append((column, value))
        elif name == self.row_name and self.values:
            row = [""] * max(column for column, _ in self.values)
            for column, value in self.values:
                row[column - 1] = _cell_text(value)
            self.values = []
            self.rows.append((self.number, _trim(row)))

    def _value(self, kind: str, style: str | None, texts: list[str]):
        if kind == "inlineStr":
            return "".join(texts) if texts else None
        if not texts:
            return None
        text = texts[0] if len(texts) == 1 else "".join(texts)
        if not text:
            return None
        if kind == "n":
            value = self.cast_number(text)
            if style and int(style) in self.date_styles:
                try:
                    return self.from_excel(value, self.epoch, timedelta=int(style) in self.timedelta_styles)
                except (OverflowError, ValueError):
                    return "#VALUE!"  # as openpyxl reads a date serial out of range
            return value
        if kind == "s":
            return self.shared[int(text)]
        if kind == "b":
            return bool(int(text))
        if kind == "d":
            return self.from_iso(text)
        return text  # "str" (a formula's text result), "e" (an error such as #N/A)


def _column_number(letters: str) -> int:
    """The column of a cell reference's letters ("AB" of "AB12"), 1-based; past XFD (or not
    letters at all) is a ValueError."""
    from openpyxl.utils.cell import column_index_from_string

    return column_index_from_string(letters.lstrip("$").rstrip("$"))


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
    """Without its trailing blank cells (one slice: trimming a cell at a time copied the row
    each time, quadratic in its width)."""
    end = len(row)
    while end and not row[end - 1].strip():
        end -= 1
    return row if end == len(row) else row[:end]


def _fit(row: list[str], width: int | None) -> list[str]:
    if width is None:
        return row
    return (row + [""] * width)[:width] if len(row) < width else row[:width] if all(
        not cell.strip() for cell in row[width:]) else row


def _shorter(text: str, length: int = 300) -> str:
    """A parser's message, which may quote the input, cut to a sentence's length."""
    return text if len(text) <= length else text[:length] + "..."
