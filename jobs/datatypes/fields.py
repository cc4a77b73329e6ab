"""Parsers for the values financial records carry: amounts, dates, currencies, free text.

Each raises `RecordRejected` with a stable code naming the field, so a bad value fails its
record with a reason instead of its batch. Nothing is guessed silently: a date such as
03/04/2024 that fits both day-first and month-first is rejected as ambiguous unless the job's
options say which it is.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from jobs.datatypes.base import RecordRejected

MAX_ABS_AMOUNT = Decimal("1e15")

# ISO 4217 active codes plus the precious-metal / fund codes ledgers use (List One).
ISO_4217_ACTIVE = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP
    ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK
    MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN
    PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG
    XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL
    """.split()
)
# ISO 4217 List Three ("historic denominations"): codes withdrawn from use but real in the
# statements of their time, and some banks still write them for the current currency (Russian
# banks export RUR for the rouble, retired in 1998). Taken from the list SIX publishes for ISO
# (list-three.xml); a code that never was ISO 4217 ("ABC", "TBD") stays unknown. A withdrawn
# code is stored as written, never translated: RUR is not RUB (the 1998 redenomination divided
# by 1,000, and a file's amounts are in whatever the bank meant), so an analyst sees the code
# the bank wrote and decides.
ISO_4217_HISTORIC = frozenset(
    """
    ADP AFA ALK AOK AON AOR ARA ARP ARY ATS AYM AZM BAD BEC BEF BEL BGJ BGK BGL BOP BRB BRC BRE
    BRN BRR BUK BYB BYR CHC CSD CSJ CSK CYP DDM DEM ECS ECV EEK ESA ESB ESP FIM FRF GEK GHC GHP
    GNE GNS GQE GRD GWE GWP HRD HRK IEP ILP ILR ISJ ITL LAJ LSM LTL LTT LUC LUF LUL LVL LVR MGF
    MLF MRO MTL MTP MVQ MXP MZE MZM NIC NLG PEH PEI PES PLZ PTE RHD ROK ROL RUR SDD SDP SIT SKK
    SRG STD SUR TJR TMM TPE TRL UAK UGS UGW USS UYN UYP VEB VEF VNC XEU XFO XFU XRE YDD YUD YUM
    YUN ZAL ZMK ZRN ZRZ ZWC ZWD ZWN ZWR
    """.split()
)
# Every code ISO 4217 defines or defined: what a record's currency may be.
ISO_4217 = ISO_4217_ACTIVE | ISO_4217_HISTORIC
CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW", "₽": "RUB",
                    "₺": "TRY", "₪": "ILS", "₫": "VND", "₱": "PHP", "₦": "NGN", "R$": "BRL", "CHF": "CHF",
                    "zł": "PLN", "kr": "", "Fr.": "CHF"}

_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
# A currency symbol or ISO code, allowed only before or after the number ("$1,036.47",
# "1.234,56 EUR", "CHF 1'234.50"); letters anywhere else make the amount invalid.
_SYMBOL_PATTERN = "|".join(re.escape(symbol) for symbol in sorted(
    [*CURRENCY_SYMBOLS, "US$", "C$", "A$", "NZ$", "HK$", "S$", "Fr", "€", "¥"], key=len, reverse=True))
_AMOUNT = re.compile(
    r"^(?P<sign1>[-+\u2212]?)\s*(?:(?P<pre>" + _SYMBOL_PATTERN + r"|[A-Za-z]{3})\s*)?(?P<sign2>[-+\u2212]?)\s*"
    r"(?P<number>[\d.,'\u2019 \u00a0\u202f]*\d[\d.,'\u2019 \u00a0\u202f]*|[.,]\d+)"
    r"\s*(?P<sign3>[-+\u2212]?)\s*(?:(?P<post>" + _SYMBOL_PATTERN + r"|[A-Za-z]{3})\s*)?(?P<sign4>[-+\u2212]?)$")
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2019": "'"})
THOUSANDS_SEPARATORS = (",", ".", " ", "'", "")


# A text starting with one of these is a formula to a spreadsheet (OWASP, "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@")


def as_written(text: str, collapse: bool = False) -> str:
    """`text` trimmed (with `collapse`, its runs of white space made one space), the padding
    of fixed-width exports, except the white space before a leading =, +, - or @: that is what
    keeps a spreadsheet from reading "\t=1+2" as a formula, and what was imported is stored as
    it was written (docs/design.md, "Errors")."""
    tidy = " ".join(text.split()) if collapse else text.strip()
    if tidy[:1] in FORMULA_STARTS and text[:1] != tidy[:1]:
        return text[:len(text) - len(text.lstrip())] + tidy
    return tidy


def require_text(record: dict, field: str, max_length: int) -> str:
    value = record.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordRejected(f"missing_{field}", f"{field} is required", field)
    if isinstance(value, (dict, list)):
        raise RecordRejected(f"invalid_{field}", f"{field} must be text, not {type(value).__name__}", field)
    text = as_written(str(value))
    if len(text) > max_length:
        raise RecordRejected(f"invalid_{field}", f"{field} is longer than {max_length} characters", field)
    return text


def optional_text(record: dict, field: str, max_length: int) -> str:
    value = record.get(field)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise RecordRejected(f"invalid_{field}", f"{field} must be text, not {type(value).__name__}", field)
    text = as_written(str(value), collapse=True)
    return text[:max_length]


def parse_amount(value: Any, *, decimal_separator: str | None = None, thousands_separator: str | None = None,
                 field: str = "amount") -> Decimal:
    """Parses 1234.5, "1,234.56", "1.234,56", "1 234,56", "$1,036.47", "(123.45)", "24.10-".

    With `decimal_separator` given the reading is exact; without it, a string that has both
    separators takes the last as the decimal point, and a lone comma followed by exactly three
    digits is a thousands separator (1,234 -> 1234) while other digit counts make it decimal.
    `thousands_separator` ("," "." " " "'" or "" for none) pins the grouping character.
    Digit groups must be well formed (1,234,567 or the Indian 12,34,567; not 1,2,3), and the
    only letters allowed are a currency symbol or ISO code before or after the number:
    "1e5", "12abc34" and "1 234,56" read with a decimal point are invalid, never guessed.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordRejected(f"missing_{field}", f"{field} is required", field)
    if isinstance(value, bool):
        raise RecordRejected(f"invalid_{field}", f"{field} must be a number, not a boolean", field)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise RecordRejected(f"invalid_{field}", f"{field} must be a finite number", field)
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        amount = _parse_amount_text(value, decimal_separator, thousands_separator, field)
    else:
        raise RecordRejected(f"invalid_{field}", f"{field} must be a number, not {type(value).__name__}", field)
    if not amount.is_finite() or abs(amount) >= MAX_ABS_AMOUNT:
        raise RecordRejected(f"invalid_{field}", f"{field} {value!r} is out of range", field)
    if amount.as_tuple().exponent < -4:
        amount = amount.quantize(Decimal("0.0001"))
    return amount


_WHOLE_NUMBER = re.compile(r"^[+-]?\d+$")


def from_minor_units(amount: Any, digits: int) -> Any:
    """An amount written in minor units (cents) in the major unit, exactly: "25175" with
    `digits` 2 is "251.75", -100 is "-1.00". The decimal point is moved, never rounded; None,
    "" and a value already unreadable are returned unchanged. A value with a decimal part is
    not a count of minor units: it is returned as written with a note, so that the record
    fails as invalid_amount saying why, rather than being read at a scale it does not have."""
    if amount is None or isinstance(amount, bool):
        return amount
    text = str(amount).strip()
    if not text:
        return amount
    if not _WHOLE_NUMBER.match(text):
        try:
            Decimal(text)
        except InvalidOperation:
            return amount  # unreadable already: parse_amount rejects it with its own reason
        return f"{text} (not a whole number of minor units)"
    return str(Decimal(text).scaleb(-digits))


def _is_currency(token: str | None) -> bool:
    if not token:
        return True
    return token in CURRENCY_SYMBOLS or token in ("US$", "C$", "A$", "NZ$", "HK$", "S$", "Fr", "€", "¥") \
        or token.upper() in ISO_4217


def _parse_amount_text(raw: str, decimal_separator: str | None, thousands_separator: str | None,
                       field: str) -> Decimal:
    text = raw.strip()
    if _PLAIN_NUMBER.match(text) and decimal_separator != "," and thousands_separator != ".":
        return Decimal(text)

    def invalid(why: str = "is not a number") -> RecordRejected:
        return RecordRejected(f"invalid_{field}", f"{field} {raw!r} {why}", field)

    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1].strip()
    match = _AMOUNT.match(text.translate(_SPACES))
    if not match or not _is_currency(match.group("pre")) or not _is_currency(match.group("post")):
        raise invalid()
    if match.group("pre") and match.group("post"):
        raise invalid()
    signs = [match.group(name) for name in ("sign1", "sign2", "sign3", "sign4") if match.group(name)]
    if len(signs) > 1 or (signs and negative):
        raise invalid("has more than one sign")
    if signs and signs[0] in "-\u2212":
        negative = True
    number = match.group("number").strip()
    decimal = decimal_separator
    if decimal is None and thousands_separator in (",", "."):
        decimal = "," if thousands_separator == "." else "."
    decimal = decimal or _guess_decimal_separator(number)
    if number.count(decimal) > 1:
        raise invalid("has more than one decimal separator")
    whole, point, fraction = number.partition(decimal)
    if fraction and not fraction.isdigit():
        raise invalid("has separators after its decimal separator")
    digits = _ungroup(whole, decimal, thousands_separator)
    if digits is None:
        raise invalid("has badly grouped digits")
    if not digits and not fraction:
        raise invalid()
    try:
        amount = Decimal(f"{digits}.{fraction}" if point else digits)
    except InvalidOperation:
        raise invalid() from None
    return -amount if negative else amount


_GROUPED = re.compile(r"^\d{1,3}(?:(?P<sep>[,. '])\d{3})(?:(?P=sep)\d{3})*$")
_INDIAN = re.compile(r"^\d{1,2}(?:,\d{2})*,\d{3}$")


def _ungroup(whole: str, decimal: str, thousands: str | None) -> str | None:
    """The digits of an integer part, or None when its grouping is malformed: groups of three
    after the first (1,234,567 / 1.234.567 / 1 234 567 / 1'234'567), or lakh grouping
    (12,34,567), with one separator that is not the decimal one."""
    if whole.isdigit() or not whole:
        return whole
    match = _GROUPED.match(whole)
    if match:
        separator = match.group("sep")
    elif _INDIAN.match(whole):
        separator = ","
    else:
        return None
    if separator == decimal or (thousands is not None and separator != thousands):
        return None
    return whole.replace(separator, "")


def _guess_decimal_separator(text: str) -> str:
    last_dot, last_comma = text.rfind("."), text.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        return "." if last_dot > last_comma else ","
    if last_comma >= 0:
        digits_after = len(text) - last_comma - 1
        if text.count(",") == 1 and digits_after != 3:
            return ","
        return "."  # 1,234 or 1,234,567: thousands separators
    if last_dot >= 0 and text.count(".") > 1:
        return ","  # 1.234.567: thousands separators, decimal comma convention
    return "."


_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_YMD = re.compile(r"^(\d{4})([/.\-])(\d{1,2})\2(\d{1,2})$")
_DMY = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{2}|\d{4})$")
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_TEXT_DATE = re.compile(r"^(\d{1,2})[\s\-]([A-Za-z]{3})[A-Za-z]*[\s\-,]+(\d{2}|\d{4})$")
_TEXT_DATE_US = re.compile(r"^([A-Za-z]{3})[A-Za-z]*\s+(\d{1,2}),?\s+(\d{4})$")
_TRAILING_TIME = re.compile(r"[ T]+\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[AaPp][Mm])?$")


def parse_date(value: Any, *, day_first: bool | None = None, date_format: str | None = None,
               field: str = "date") -> dt.date:
    """Parses ISO dates (and datetimes), YYYY/MM/DD, DD.MM.YYYY, DD/MM/YY(YY), DD-MM-YYYY, 5 Mar 2024,
    Mar 5, 2024. `day_first` decides the order of DD/MM, DD-MM and DD.MM dates alike; without it,
    slash and dash dates that fit both orders are rejected as ambiguous (dotted ones are
    day-first by convention). Year-first dates are never ambiguous."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordRejected(f"missing_{field}", f"{field} is required", field)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise RecordRejected(f"invalid_{field}", f"{field} must be a date string, not {type(value).__name__}", field)
    text = value.strip()
    try:
        if date_format:
            return dt.datetime.strptime(text, date_format).date()
        match = _ISO_DATE.match(text)
        if not (match and (len(text) == 10 or text[10] in "T ")):
            text = _TRAILING_TIME.sub("", text)  # "03.02.2021 13:12": the day is the date
            match = _ISO_DATE.match(text)
        if match and (len(text) == 10 or text[10] in "T "):
            return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        match = _YMD.match(text)
        if match:
            return dt.date(int(match.group(1)), int(match.group(3)), int(match.group(4)))
        match = _DMY.match(text)
        if match:
            first, sep, second, year = int(match.group(1)), match.group(2), int(match.group(3)), match.group(4)
            full_year = _expand_year(year)
            # '/', '-' and '.' all follow the decided order; undecided, a value whose parts
            # fit only one order reads that way, and a dotted one that fits both is day-first
            # (DD.MM.YYYY is the convention wherever dots are written).
            if day_first is None:
                if first > 12 >= second:
                    day_first = True
                elif second > 12 >= first:
                    day_first = False
                elif first == second or sep == ".":
                    day_first = True
                else:
                    raise RecordRejected(
                        "ambiguous_date",
                        f"{field} {value!r} fits both DD/MM and MM/DD; set options.day_first or a date format",
                        field,
                    )
            day, month = (first, second) if day_first else (second, first)
            return dt.date(full_year, month, day)
        match = _TEXT_DATE.match(text)
        if match and match.group(2).lower() in _MONTHS:
            return dt.date(_expand_year(match.group(3)), _MONTHS[match.group(2).lower()], int(match.group(1)))
        match = _TEXT_DATE_US.match(text)
        if match and match.group(1).lower() in _MONTHS:
            return dt.date(int(match.group(3)), _MONTHS[match.group(1).lower()], int(match.group(2)))
    except ValueError:
        raise RecordRejected(f"invalid_{field}", f"{field} {value!r} is not a valid calendar date", field) from None
    raise RecordRejected(f"invalid_{field}", f"{field} {value!r} is not a recognised date", field)


def _expand_year(year: str) -> int:
    if len(year) == 4:
        return int(year)
    two = int(year)
    return 2000 + two if two < 70 else 1900 + two


MISSING_CURRENCY = ("currency is required and the record names none: set the project's base currency, "
                    "or give \"default_currency\" in the mapping or the job's options (e.g. "
                    "\"default_currency\": \"EUR\"), or map the file's currency column")


def parse_currency(value: Any, *, default: str | None = None, field: str = "currency") -> str:
    """The upper-case ISO 4217 code of `value` (a code in any case, or a symbol such as "€"),
    or `default` when it is blank. Guarantees the result is a code ISO 4217 defines now or
    defined once (List Three: DEM, LTL, RUR), kept as written; anything else is rejected
    with `invalid_<field>` (not three letters) or `unknown_currency`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if default:
            value = default
        else:
            message = MISSING_CURRENCY if field == "currency" else f"{field} is required"
            raise RecordRejected(f"missing_{field}", message, field)
    if not isinstance(value, str):
        raise RecordRejected(f"invalid_{field}", f"{field} must be a three-letter code", field)
    text = value.strip()
    code = CURRENCY_SYMBOLS.get(text, text).upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise RecordRejected(f"invalid_{field}", f"{field} {value!r} is not a three-letter currency code", field)
    if code not in ISO_4217:
        raise RecordRejected("unknown_currency", f"{field} {value!r} is not an ISO 4217 currency code, "
                             "current or withdrawn", field)
    return code
