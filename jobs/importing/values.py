"""Whole-column decisions for dates and numbers.

A bank export writes one convention per column, so Zenith reads the entire column before
deciding: 03/04/2024 is day-first if any date in that column has a day above 12 (and
month-first if any has a month-position value above 12); "1.234,56" settles the decimal
comma for every amount. A column whose values fit both readings is refused with a request
for a mapping: nothing is guessed.
"""

from __future__ import annotations

import dataclasses
import re

from ..datatypes.base import RecordRejected
from ..datatypes.fields import parse_amount, parse_date

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}")
_COMPACT = re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")
_YMD = re.compile(r"^\d{4}[/.]\d{1,2}[/.]\d{1,2}$")
_DMY = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{2}|\d{4})$")
_DIGITS = re.compile(r"[\d.,\s'\u00a0\u202f]+")
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "CHF": "CHF", "Fr.": "CHF"}
_CODE = re.compile(r"\b([A-Z]{3})\b")


class AmbiguousColumn(ValueError):
    pass


@dataclasses.dataclass
class DateColumn:
    name: str
    day_first_evidence: int = 0
    month_first_evidence: int = 0
    slashed: int = 0
    dotted: int = 0
    iso: int = 0
    compact: int = 0
    two_digit_years: int = 0
    other: int = 0
    example: str = ""

    def observe(self, value: str) -> None:
        text = (value or "").strip()
        if not text:
            return
        if _ISO.match(text) or _YMD.match(text):
            self.iso += 1
            return
        if _COMPACT.match(text):
            self.compact += 1
            return
        match = _DMY.match(text)
        if not match:
            self.other += 1
            return
        first, sep, second, year = int(match.group(1)), match.group(2), int(match.group(3)), match.group(4)
        if len(year) == 2:
            self.two_digit_years += 1
        if sep == ".":
            self.dotted += 1
            return
        self.slashed += 1
        if first > 12 >= second:
            self.day_first_evidence += 1
            self.example = self.example or text
        elif second > 12 >= first:
            self.month_first_evidence += 1
            self.example = self.example or text

    def decide(self, day_first: bool | None = None) -> dict:
        """The column's reading. Raises AmbiguousColumn when it cannot be decided."""
        if self.slashed and day_first is None:
            if self.day_first_evidence and self.month_first_evidence:
                raise AmbiguousColumn(
                    f"column '{self.name}' mixes day-first and month-first dates; give the date format in the mapping")
            if not self.day_first_evidence and not self.month_first_evidence:
                raise AmbiguousColumn(
                    f"every date in column '{self.name}' fits both DD/MM/YYYY and MM/DD/YYYY; say which in the "
                    "mapping (\"day_first\": true or false, or a \"date_format\")")
            day_first = bool(self.day_first_evidence)
        pattern = ("DD/MM/YYYY" if day_first else "MM/DD/YYYY") if self.slashed else (
            "DD.MM.YYYY" if self.dotted else "YYYYMMDD" if self.compact and not self.iso else "YYYY-MM-DD")
        if self.two_digit_years and pattern[-4:] == "YYYY":
            pattern = pattern[:-2]
        return {"column": self.name, "day_first": day_first, "pattern": pattern}


@dataclasses.dataclass
class NumberColumn:
    name: str
    decimal_dot: int = 0
    decimal_comma: int = 0
    ambiguous: int = 0
    parentheses: int = 0
    trailing_minus: int = 0
    symbols: dict = dataclasses.field(default_factory=dict)
    example: str = ""

    def observe(self, value: str) -> None:
        text = (value or "").strip()
        if not text:
            return
        for symbol, code in _SYMBOLS.items():
            if symbol in text:
                self.symbols[code] = self.symbols.get(code, 0) + 1
        for code in _CODE.findall(text):
            self.symbols[code] = self.symbols.get(code, 0) + 1
        if text.startswith("(") and text.endswith(")"):
            self.parentheses += 1
        if text.endswith("-"):
            self.trailing_minus += 1
        digits = "".join(_DIGITS.findall(text)).replace(" ", "").replace("'", "").replace("\u00a0", "")
        digits = digits.replace("\u202f", "")
        dot, comma = digits.rfind("."), digits.rfind(",")
        if dot >= 0 and comma >= 0:
            if dot > comma:
                self.decimal_dot += 1
            else:
                self.decimal_comma += 1
            return
        last = max(dot, comma)
        if last < 0:
            return
        separator = digits[last]
        after = len(digits) - last - 1
        if digits.count(separator) > 1:
            # 1,234,567 or 1.234.567: repeated separators group thousands
            if separator == ",":
                self.decimal_dot += 1
            else:
                self.decimal_comma += 1
        elif after in (1, 2):
            if separator == ".":
                self.decimal_dot += 1
            else:
                self.decimal_comma += 1
        else:
            self.ambiguous += 1
            self.example = self.example or text

    def decide(self, decimal_separator: str | None = None) -> dict:
        if decimal_separator is None:
            if self.decimal_dot and self.decimal_comma:
                raise AmbiguousColumn(f"column '{self.name}' mixes decimal points and decimal commas; give the "
                                      "decimal separator in the mapping")
            if self.decimal_comma:
                decimal_separator = ","
            elif self.decimal_dot:
                decimal_separator = "."
            elif self.ambiguous:
                raise AmbiguousColumn(
                    f"numbers in column '{self.name}' such as {self.example!r} fit both a thousands separator and a "
                    "decimal one; give \"decimal_separator\" in the mapping")
            else:
                decimal_separator = "."
        return {"column": self.name, "decimal_separator": decimal_separator,
                "currency_symbols": sorted(self.symbols)}


def to_iso_date(value: str, day_first: bool | None, date_format: str | None) -> str:
    """The date as YYYY-MM-DD, or the value unchanged for the handler to reject with its reason."""
    text = (value or "").strip()
    if not text:
        return ""
    if date_format is None and _COMPACT.match(text):
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    try:
        return parse_date(text, day_first=day_first, date_format=date_format).isoformat()
    except RecordRejected:
        return text


def to_decimal(value: str, decimal_separator: str) -> str | None:
    """A canonical decimal string, None for an empty cell, or the raw text if unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        return str(parse_amount(text, decimal_separator=decimal_separator))
    except RecordRejected:
        return text
