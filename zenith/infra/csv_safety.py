"""Cells of every CSV file Zenith writes, safe to open in a spreadsheet.

Excel, LibreOffice and Google Sheets evaluate a cell whose text starts with `=`, `+`, `-` or
`@` as a formula, and a leading tab or carriage return can hide one of those from a naive
check (CSV injection: `=HYPERLINK(...)` phishing links, `+cmd|' /C calc'!A0` DDE launches,
`@SUM(...)`). Uploaded data is attacker-controlled, and exports hand it to someone else's
spreadsheet, so every CSV writer passes each cell through `cell()` (OWASP "CSV Injection":
prefix such a cell with a single quote, which spreadsheets show as text and never evaluate).

Numbers are the one exception. A value that is a number by its type (an `int`, `float` or
`Decimal` read from a numeric column, such as an amount) is written as a plain number even when
negative: `-2.5` opens as the number -2.5, which cannot run anything, and prefixing it would
turn an amount column into text that no longer sums. The exemption is proved, not assumed: the
written form must match a plain decimal number, else it is prefixed like any text. Text that
merely looks like a number (an id `-2.50`, a description `-2+3`) is text, and is prefixed.

What was imported is stored as it was written; only the exported copy is changed.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

# OWASP's list: a cell starting with any of these may be read as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def cell(value: Any) -> str:
    """The text of one CSV cell: a number as a plain number, anything else as text that
    cannot start a formula (a single quote in front when it could)."""
    if value is None:
        return ""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        text = _number_text(value)
        if _PLAIN_NUMBER.fullmatch(text):
            return text
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def row(values) -> list[str]:
    """`cell()` of each value, for csv.writer.writerow."""
    return [cell(value) for value in values]


def _number_text(value: int | float | Decimal) -> str:
    if isinstance(value, Decimal):
        # Fixed-point, without an exponent or trailing zeros: 1E+2 -> 100, -2.50 -> -2.5.
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    return repr(value) if isinstance(value, float) else str(value)
