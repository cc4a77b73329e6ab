"""Whole-column decisions for dates and numbers.

A bank export writes one convention per column, so Zenith reads the entire column before
deciding: 03/04/2024 is day-first if any date in that column has a day above 12 (and
month-first if any has a month-position value above 12), whether written with '/', '-' or
'.'; "1.234,56" settles the decimal comma for every amount. A column whose values fit both
readings is refused with a request for a mapping: nothing is guessed.

A few dates in another format than the column's (a slash date among ISO ones) do not decide
the column: each is read on its own, and one that fits both orders fails its record as
ambiguous. Likewise a column whose amounts each show their own decimal separator
("1,234.56" next to "1.234,56") is read value by value, unless some value could be read
either way.
"""

from __future__ import annotations

import dataclasses
import re

from jobs.datatypes.base import RecordRejected
from jobs.datatypes.fields import ISO_4217, parse_amount, parse_date

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}")
_COMPACT = re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")
_YMD = re.compile(r"^\d{4}([/.:-])\d{1,2}\1\d{1,2}$")  # 2012:03:01 too (Danske)
_DMY = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{2}|\d{4})$")
_TEXT_MONTH = re.compile(r"^\d{1,2}([\s-])[A-Za-z]{3}[A-Za-z]*[\s,-]+(\d{2}|\d{4})$")
_US_TEXT_MONTH = re.compile(r"^[A-Za-z]{3}[A-Za-z]*\s+\d{1,2},?\s+\d{4}$")
_TIME = re.compile(r"[ T]\d{1,2}:\d{2}(:\d{2})?")
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
    dashed: int = 0
    dotted: int = 0
    iso: int = 0
    compact: int = 0
    text_month: int = 0  # 23-Jan-15, 5 Mar 2024
    text_month_sep: str = "-"
    us_text_month: int = 0  # Mar 5, 2024
    two_digit_years: int = 0
    timed: int = 0  # values with a time of day after the date
    undecided: int = 0  # numeric day/month dates that fit both orders (03/04/2024)
    other: int = 0
    example: str = ""

    def observe(self, value: str) -> None:
        text = (value or "").strip()
        if not text:
            return
        if _ISO.match(text) or _YMD.match(text):
            self.iso += 1
            if _TIME.search(text, 10):
                self.timed += 1
            return
        found = _TEXT_MONTH.match(text)
        if found:
            self.text_month += 1
            self.text_month_sep = found.group(1)
            if len(found.group(2)) == 2:
                self.two_digit_years += 1
            return
        if _US_TEXT_MONTH.match(text):
            self.us_text_month += 1
            return
        timed = _TIME.search(text)
        if timed and timed.end() == len(text):
            self.timed += 1
            text = text[:timed.start()].strip()
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
        elif sep == "-":
            self.dashed += 1
        else:
            self.slashed += 1
        if first > 12 >= second:
            self.day_first_evidence += 1
            self.example = self.example or text
        elif second > 12 >= first:
            self.month_first_evidence += 1
            self.example = self.example or text
        elif first != second:
            self.undecided += 1

    @property
    def numeric(self) -> int:
        return self.slashed + self.dashed + self.dotted

    def decide(self, day_first: bool | None = None) -> dict:
        """The column's reading. Raises AmbiguousColumn when it cannot be decided."""
        total = self.numeric + self.iso + self.compact + self.other + self.text_month + self.us_text_month
        convention = self.numeric * 2 > total  # day/month dates are the column's format
        if day_first is None and self.numeric:
            if self.day_first_evidence and self.month_first_evidence:
                if convention:
                    raise AmbiguousColumn(
                        f"column '{self.name}' mixes day-first and month-first dates; give the date format in the "
                        "mapping")
            elif self.day_first_evidence or self.month_first_evidence:
                day_first = bool(self.day_first_evidence)
            elif not self.undecided or not (self.slashed + self.dashed):
                day_first = True  # only dotted dates (DD.MM by convention) or days equal to months
            elif convention:
                raise AmbiguousColumn(
                    f"every date in column '{self.name}' fits both DD/MM/YYYY and MM/DD/YYYY; say which in the "
                    "mapping (\"day_first\": true or false, or a \"date_format\")")
        if convention or (self.numeric and day_first is not None and not (self.iso or self.compact)):
            sep = max(("/", self.slashed), ("-", self.dashed), (".", self.dotted), key=lambda item: item[1])[0]
            order = ("DD", "MM") if day_first or day_first is None else ("MM", "DD")
            pattern = f"{order[0]}{sep}{order[1]}{sep}YYYY"
            if self.two_digit_years * 2 > self.numeric:
                pattern = pattern[:-2]
        elif self.text_month * 2 > total:
            sep = self.text_month_sep
            pattern = f"DD{sep}Mon{sep}YY" if self.two_digit_years * 2 > self.text_month else f"DD{sep}Mon{sep}YYYY"
        elif self.us_text_month * 2 > total:
            pattern = "Mon DD, YYYY"
        else:
            pattern = "YYYYMMDD" if self.compact > self.iso else "YYYY-MM-DD"
        if self.timed * 2 > total:
            pattern += " hh:mm"
        return {"column": self.name, "day_first": day_first, "pattern": pattern}


@dataclasses.dataclass
class NumberColumn:
    name: str
    decimal_dot: int = 0
    decimal_comma: int = 0
    ambiguous: int = 0  # 1,234 or 1.234: a thousands group or three decimals
    ambiguous_comma: int = 0
    parentheses: int = 0
    trailing_minus: int = 0
    negatives: int = 0  # values with a sign of their own (-5, 5-, (5)): the column is signed
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
            if code in ISO_4217:  # "TBD" or "N/A" in an amount column is no currency
                self.symbols[code] = self.symbols.get(code, 0) + 1
        if text.startswith("(") and text.endswith(")"):
            self.parentheses += 1
            self.negatives += 1
        if text.endswith("-"):
            self.trailing_minus += 1
            self.negatives += 1
        elif text[:1] in "-\u2212" or text[:2] in ("$-", "€-", "£-"):
            self.negatives += 1
        digits = "".join(_DIGITS.findall(text)).replace(" ", "").replace("'", "").replace("\u00a0", "")
        digits = digits.replace("\u202f", "").strip(".,")  # "Fr. 12.50": the symbol's dot is no separator
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
        elif after != 3 or digits[:last].lstrip("-+(") in ("", "0"):
            # 12,5 / 0,125 / 1.2345: no thousands group has other than three digits or starts with 0
            if separator == ".":
                self.decimal_dot += 1
            else:
                self.decimal_comma += 1
        else:
            self.ambiguous += 1
            self.ambiguous_comma += separator == ","
            self.example = self.example or text

    def decide(self, decimal_separator: str | None = None, thousands_separator: str | None = None) -> dict:
        """The column's decimal separator; None when the column mixes conventions but every value
        shows its own (each is then read on its own). Raises AmbiguousColumn when undecidable."""
        if decimal_separator is None and thousands_separator in (",", "."):
            decimal_separator = "," if thousands_separator == "." else "."
        dot, comma = self.decimal_dot, self.decimal_comma
        if thousands_separator is not None:
            # "," and "." do not group thousands here: 1,234 can only have a decimal comma
            comma += self.ambiguous_comma
            dot += self.ambiguous - self.ambiguous_comma
        if decimal_separator is None and thousands_separator is not None and dot and comma:
            raise AmbiguousColumn(f"column '{self.name}' mixes decimal points and decimal commas; give "
                                  "\"decimal_separator\" in the mapping")
        if decimal_separator is None:
            if dot and comma:
                if self.ambiguous:
                    raise AmbiguousColumn(
                        f"column '{self.name}' mixes decimal points and decimal commas, and values such as "
                        f"{self.example!r} could be either; give \"decimal_separator\" in the mapping")
            elif comma:
                decimal_separator = ","
            elif dot:
                decimal_separator = "."
            elif self.ambiguous:
                raise AmbiguousColumn(
                    f"numbers in column '{self.name}' such as {self.example!r} fit both a thousands separator and a "
                    "decimal one; give \"decimal_separator\" in the mapping")
            else:
                decimal_separator = "."
        decision = {"column": self.name, "decimal_separator": decimal_separator,
                    "currency_symbols": sorted(self.symbols)}
        if thousands_separator is not None:
            decision["thousands_separator"] = thousands_separator
        return decision


def to_iso_date(value: str, day_first: bool | None, date_format: str | None) -> str:
    """The date as YYYY-MM-DD, or the value unchanged for the handler to reject with its reason."""
    text = (value or "").strip()
    if not text:
        return ""
    if date_format is None and _COMPACT.match(text):
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    if date_format is None and _YMD.match(text):
        # year first is never ambiguous, whatever the separator: written as ISO for the handler
        year, month, day = re.split(r"[/.:-]", text)
        return f"{year}-{int(month):02d}-{int(day):02d}"
    try:
        return parse_date(text, day_first=day_first, date_format=date_format).isoformat()
    except RecordRejected:
        return text


def to_decimal(value: str, decimal_separator: str | None, thousands_separator: str | None = None) -> str | None:
    """A canonical decimal string, None for an empty cell, or the raw text if unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        return str(parse_amount(text, decimal_separator=decimal_separator, thousands_separator=thousands_separator))
    except RecordRejected:
        return text
