"""Hostile files, built small: each is what an attacker would upload, a few hundred KB on disk
at most, made in milliseconds.

Gzip bombs are written as many gzip members of one compressed megabyte each (a gzip file may
hold several members, read as one stream by gzip, zcat and Python alike): the same content as
one member, without spending seconds of CPU compressing a gigabyte in the test.
"""

from __future__ import annotations

import gzip
import io
import zipfile

MB = 1 << 20


def repeated_gzip(head: bytes, unit: bytes, megabytes: int, tail: bytes = b"") -> bytes:
    """gzip of `head`, then about `megabytes` MB of `unit` repeated (whole units), then `tail`."""
    block = gzip.compress(unit * (MB // len(unit)), compresslevel=9, mtime=0)
    return b"".join([gzip.compress(head, mtime=0), block * megabytes, gzip.compress(tail, mtime=0)])


def zeros_csv_gz(megabytes: int = 1024) -> bytes:
    """A `.csv.gz` of nothing but NUL bytes: 1 GB of zeros in about 1 MB."""
    return repeated_gzip(b"", b"\x00", megabytes)


def short_lines_csv_gz(megabytes: int = 1024) -> bytes:
    """A `.csv.gz` of `megabytes` MB of short lines in a German bank's layout."""
    return repeated_gzip(b"Buchungstag;Betrag\n", b"02.01.2026;-1.00\n", megabytes)


def long_line_csv_gz(megabytes: int = 256) -> bytes:
    """A `.csv.gz` whose second line is `megabytes` MB long, without a line break."""
    return repeated_gzip(b"id,date,amount,currency,description\nt1,2024-01-02,1.00,EUR,", b"A", megabytes, b"\n")


def long_memo_ofx_gz(megabytes: int = 128) -> bytes:
    """An `.ofx.gz` statement whose one MEMO is `megabytes` MB long."""
    head = (b"OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"
            b"COMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1"
            b"<STATUS><CODE>0<SEVERITY>INFO</STATUS><STMTRS><CURDEF>USD<BANKACCTFROM><BANKID>1<ACCTID>2"
            b"<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST><DTSTART>20240101<DTEND>20240131<STMTTRN>"
            b"<TRNTYPE>DEBIT<DTPOSTED>20240102<TRNAMT>-1.00<FITID>F1<NAME>Shop<MEMO>")
    tail = (b"</STMTTRN></BANKTRANLIST><LEDGERBAL><BALAMT>0<DTASOF>20240131</LEDGERBAL></STMTRS>"
            b"</STMTTRNRS></BANKMSGSRSV1></OFX>\n")
    return repeated_gzip(head, b"A", megabytes, tail)


def deep_json(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int = 100_000) -> str:
    return '{"a":' * depth + "1" + "}" * depth


_SHEET_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')


def huge_dimension_xlsx() -> bytes:
    """A workbook of 4 real rows and one numbered 1,048,576, whose sheet declares the whole
    grid, A1:XFD1048576."""
    rows = [["id", "date", "amount", "currency"], ["t1", "2024-01-02", "1.50", "EUR"],
            ["t2", "2024-01-03", "2.50", "EUR"], ["t3", "2024-01-04", "3.50", "EUR"]]
    cells = "".join(
        f'<row r="{r}">' + "".join(f'<c r="{"ABCD"[c]}{r}" t="inlineStr"><is><t>{value}</t></is></c>'
                                   for c, value in enumerate(row)) + "</row>"
        for r, row in enumerate(rows, 1))
    cells += '<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>t4</t></is></c></row>'
    sheet = f'{_SHEET_HEAD}<dimension ref="A1:XFD1048576"/><sheetData>{cells}</sheetData></worksheet>'
    return workbook(sheet)


def workbook(sheet_xml: str, extra: dict[str, bytes] | None = None) -> bytes:
    """A minimal .xlsx around one sheet's XML (as Excel writes the parts openpyxl needs)."""
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
            '"/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
            'main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
            'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": sheet_xml,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return out.getvalue()


def wide_xlsx(columns: int = 16_384) -> bytes:
    """A sheet whose header row uses `columns` columns, each with a value."""
    from openpyxl.utils import get_column_letter

    header = "".join(f'<c r="{get_column_letter(c)}1" t="inlineStr"><is><t>c{c}</t></is></c>'
                     for c in range(1, columns + 1))
    return workbook(f'{_SHEET_HEAD}<sheetData><row r="1">{header}</row></sheetData></worksheet>')


def long_row_xlsx(cells: int = 3, chars: int = 40_000) -> bytes:
    """A row of `cells` inline strings of `chars` characters each."""
    text = "A" * chars
    row = "".join(f'<c r="{"ABCDEFGH"[c]}2" t="inlineStr"><is><t>{text}</t></is></c>' for c in range(cells))
    return workbook(f'{_SHEET_HEAD}<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c></row>'
                    f'<row r="2">{row}</row></sheetData></worksheet>')


def shared_strings_xlsx(strings: int = 1000) -> bytes:
    """A one-row sheet and a shared-strings part of `strings` short strings."""
    table = "".join(f"<si><t>s{i}</t></si>" for i in range(strings))
    shared = ('<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
              f'2006/main" count="{strings}" uniqueCount="{strings}">{table}</sst>')
    return workbook(f'{_SHEET_HEAD}<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>',
                    {"xl/sharedStrings.xml": shared})


def styled_cells_xlsx(rows: int = 20_000) -> bytes:
    """Real data in A-D and, on every row, a formatted but empty cell in the last column (XFD):
    the columns actually used are four."""
    body = ['<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c><c r="B1" t="inlineStr"><is><t>date</t>'
            '</is></c><c r="C1" t="inlineStr"><is><t>amount</t></is></c><c r="D1" t="inlineStr"><is><t>currency'
            '</t></is></c><c r="XFD1" s="1"/></row>']
    for r in range(2, rows + 2):
        body.append(f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>s{r}</t></is></c><c r="B{r}" t="inlineStr">'
                    f'<is><t>2024-01-02</t></is></c><c r="C{r}"><v>{r}.25</v></c><c r="D{r}" t="inlineStr"><is>'
                    f'<t>EUR</t></is></c><c r="XFD{r}" s="1"/></row>')
    return workbook(f'{_SHEET_HEAD}<dimension ref="A1:XFD{rows + 1}"/><sheetData>{"".join(body)}</sheetData>'
                    '</worksheet>')
