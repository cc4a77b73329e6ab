"""Red-flag rules for transactions, each producing findings with a severity and a
plain-language explanation an auditor can paste into a working paper.

Per record (run while a batch validates its records):
- `round_amount`: an exact multiple of `round_unit` (default 1,000) of at least `round_min`.
- `just_below_threshold`: within `threshold_margin` (default 5 %) below a reporting or
  approval threshold (`thresholds`, default 10,000; a list, or a dict currency -> list with
  "*" for any currency).
- `weekend_holiday`: posted on a weekend day (`weekend_days`, Monday = 0) or a holiday of
  `holiday_calendar` (default TARGET2) or of `holidays` (extra ISO dates).

Across records (they need every record of the job, so the finalizer runs them):
- `duplicate_payment`: the same amount, currency and counterparty (compared by normalised
  name, so "ACME Ltd" = "Acme Limited") within `duplicate_window_days` (default 7) of an
  earlier payment. The later record is flagged and names the earlier one.
- `account_outlier`: a robust z-score, 0.6745 * (x - median) / MAD, per (account, currency)
  over log10 |amount| (amounts are right-skewed: on a linear scale the MAD z-score flags the
  ordinary upper tail), with |z| above `outlier_z` (default 3.5, Iglewicz & Hoaglin's cut-off).
  An account needs `outlier_min_records` (default 10) postings to have a norm.

`AnalysisConfig.from_options` validates the options and raises `ValueError` naming the bad
one. Every rule can be switched off through `rules` (a list of the rule names to run).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import statistics
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from jobs.forensics.calendar import CALENDARS, holiday_name

ROUND_AMOUNT = "round_amount"
JUST_BELOW_THRESHOLD = "just_below_threshold"
WEEKEND_HOLIDAY = "weekend_holiday"
DUPLICATE_PAYMENT = "duplicate_payment"
ACCOUNT_OUTLIER = "account_outlier"
RECORD_RULES = (ROUND_AMOUNT, JUST_BELOW_THRESHOLD, WEEKEND_HOLIDAY)
JOB_WIDE_RULES = (DUPLICATE_PAYMENT, ACCOUNT_OUTLIER)
ALL_RULES = RECORD_RULES + JOB_WIDE_RULES
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclasses.dataclass(frozen=True)
class Flag:
    """A rule's verdict on one record."""

    rule: str
    severity: str
    explanation: str
    score: float | None = None
    related_external_id: str = ""
    details: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    rules: frozenset[str] = frozenset(ALL_RULES)
    thresholds: dict[str, tuple[Decimal, ...]] = dataclasses.field(
        default_factory=lambda: {"*": (Decimal(10000),)})
    threshold_margin: Decimal = Decimal("0.05")
    round_unit: Decimal = Decimal(1000)
    round_min: Decimal = Decimal(1000)
    weekend_days: frozenset[int] = frozenset({5, 6})
    holiday_calendar: str = "target2"
    holidays: dict[dt.date, str] = dataclasses.field(default_factory=dict)
    duplicate_window_days: int = 7
    outlier_z: float = 3.5
    outlier_min_records: int = 10
    outlier_scale: str = "log"
    outlier_direction: str = "high"
    benford_min_amount: Decimal = Decimal(10)

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> AnalysisConfig:
        """Reads a job's options; raises ValueError naming the first bad one."""
        options = options or {}
        values: dict[str, Any] = {}
        if "rules" in options:
            rules = options["rules"]
            if not isinstance(rules, list) or any(rule not in ALL_RULES for rule in rules):
                raise ValueError(f"options.rules must be a list of: {', '.join(ALL_RULES)}")
            values["rules"] = frozenset(rules)
        if "thresholds" in options:
            values["thresholds"] = _thresholds(options["thresholds"])
        for name in ("threshold_margin", "round_unit", "round_min", "benford_min_amount"):
            if name in options:
                values[name] = _positive_decimal(options[name], name, allow_zero=name != "round_unit")
        if values.get("threshold_margin", Decimal(0)) >= 1:
            raise ValueError("options.threshold_margin is a fraction below 1, e.g. 0.05")
        if "weekend_days" in options:
            days = options["weekend_days"]
            if not isinstance(days, list) or any(not isinstance(d, int) or not 0 <= d <= 6 for d in days):
                raise ValueError("options.weekend_days must be a list of weekday numbers (Monday = 0)")
            values["weekend_days"] = frozenset(days)
        if "holiday_calendar" in options:
            if options["holiday_calendar"] not in CALENDARS:
                raise ValueError(f"options.holiday_calendar must be one of: {', '.join(CALENDARS)}")
            values["holiday_calendar"] = options["holiday_calendar"]
        if "holidays" in options:
            values["holidays"] = _holidays(options["holidays"])
        if "duplicate_window_days" in options:
            values["duplicate_window_days"] = _int(options["duplicate_window_days"], "duplicate_window_days", 0, 366)
        if "outlier_z" in options:
            values["outlier_z"] = float(_positive_decimal(options["outlier_z"], "outlier_z"))
        if "outlier_min_records" in options:
            values["outlier_min_records"] = _int(options["outlier_min_records"], "outlier_min_records", 3, 10**9)
        if "outlier_scale" in options:
            if options["outlier_scale"] not in ("log", "linear"):
                raise ValueError("options.outlier_scale must be 'log' or 'linear'")
            values["outlier_scale"] = options["outlier_scale"]
        if "outlier_direction" in options:
            if options["outlier_direction"] not in ("high", "low", "both"):
                raise ValueError("options.outlier_direction must be 'high', 'low' or 'both'")
            values["outlier_direction"] = options["outlier_direction"]
        return cls(**values)

    def thresholds_for(self, currency: str) -> tuple[Decimal, ...]:
        return self.thresholds.get(currency, self.thresholds.get("*", ()))


def _positive_decimal(value: Any, name: str, allow_zero: bool = False) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"options.{name} must be a number") from None
    if not number.is_finite() or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"options.{name} must be a positive number")
    return number


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"options.{name} must be a whole number from {low} to {high}")
    return value


def _thresholds(raw: Any) -> dict[str, tuple[Decimal, ...]]:
    if isinstance(raw, (int, float, str)):
        raw = [raw]
    if isinstance(raw, list):
        raw = {"*": raw}
    if not isinstance(raw, dict):
        raise ValueError("options.thresholds must be a list of amounts or a dict currency -> list")
    result = {}
    for currency, amounts in raw.items():
        if isinstance(amounts, (int, float, str)):
            amounts = [amounts]
        if not isinstance(amounts, list):
            raise ValueError("options.thresholds must be a list of amounts or a dict currency -> list")
        result[str(currency).upper() if currency != "*" else "*"] = tuple(
            sorted(_positive_decimal(a, "thresholds") for a in amounts))
    return result


def _holidays(raw: Any) -> dict[dt.date, str]:
    if isinstance(raw, list):
        raw = {day: "holiday" for day in raw}
    if not isinstance(raw, dict):
        raise ValueError("options.holidays must be a list of ISO dates or a dict date -> name")
    result = {}
    for day, name in raw.items():
        try:
            result[dt.date.fromisoformat(str(day))] = str(name)
        except ValueError:
            raise ValueError(f"options.holidays: {day!r} is not an ISO date (YYYY-MM-DD)") from None
    return result


def money(amount: Decimal, currency: str = "") -> str:
    text = f"{amount:,.2f}"
    return f"{text} {currency}".strip()


# --- per-record rules ------------------------------------------------------------------------

def record_flags(date: dt.date, amount: Decimal, currency: str, config: AnalysisConfig) -> list[Flag]:
    """The per-record rules' flags for one transaction (empty when nothing is odd)."""
    flags = []
    if ROUND_AMOUNT in config.rules:
        flag = round_amount(amount, currency, config)
        if flag:
            flags.append(flag)
    if JUST_BELOW_THRESHOLD in config.rules:
        flag = just_below_threshold(amount, currency, config)
        if flag:
            flags.append(flag)
    if WEEKEND_HOLIDAY in config.rules:
        flag = weekend_holiday(date, config)
        if flag:
            flags.append(flag)
    return flags


def round_amount(amount: Decimal, currency: str, config: AnalysisConfig) -> Flag | None:
    value = abs(amount)
    if value < config.round_min or value == 0 or value % config.round_unit != 0:
        return None
    big = value % (config.round_unit * 10) == 0
    return Flag(
        ROUND_AMOUNT, "medium" if big else "low",
        f"Amount {money(amount, currency)} is an exact multiple of {money(config.round_unit)}. Real invoices "
        "rarely come to round sums (tax, unit prices and fees leave odd amounts); round amounts are typical of "
        "estimates, manual adjustments, cash withdrawals and fabricated payments.",
        details={"unit": str(config.round_unit)},
    )


def just_below_threshold(amount: Decimal, currency: str, config: AnalysisConfig) -> Flag | None:
    value = abs(amount)
    for threshold in config.thresholds_for(currency):
        floor = threshold * (1 - config.threshold_margin)
        if floor <= value < threshold:
            gap = (threshold - value) / threshold
            return Flag(
                JUST_BELOW_THRESHOLD, "medium",
                f"Amount {money(amount, currency)} is {gap:.1%} below the {money(threshold, currency)} threshold. "
                "Amounts kept just under a reporting or approval limit can indicate payments split or sized "
                "to avoid review.",
                score=float(gap), details={"threshold": str(threshold)},
            )
    return None


def weekend_holiday(date: dt.date, config: AnalysisConfig) -> Flag | None:
    holiday = holiday_name(date, config.holiday_calendar, config.holidays)
    if holiday:
        source = ("a holiday in the job's calendar" if date in config.holidays
                  else "a TARGET2 closing day: euro payment systems do not settle")
        return Flag(
            WEEKEND_HOLIDAY, "medium",
            f"Posted on {WEEKDAYS[date.weekday()]} {date.isoformat()}, {holiday} ({source}). Entries made when "
            "offices and payment systems are closed deserve a look at who made them and why.",
            details={"holiday": holiday},
        )
    if date.weekday() in config.weekend_days:
        return Flag(
            WEEKEND_HOLIDAY, "low",
            f"Posted on {WEEKDAYS[date.weekday()]} {date.isoformat()}, a weekend day. Entries made outside "
            "business days deserve a look at who made them and why.",
            details={"weekday": WEEKDAYS[date.weekday()]},
        )
    return None


# --- across records --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Posting:
    """What the job-wide rules need to know about one record."""

    item_index: int
    external_id: str
    date: dt.date
    amount: Decimal
    currency: str
    account: str
    counterparty: str
    counterparty_key: str
    reference: str = ""


def account_outliers(postings: list[Posting], config: AnalysisConfig) -> Iterator[tuple[Posting, Flag]]:
    """Robust outliers among the postings of ONE (account, currency) group."""
    values = [(p, _scaled(p.amount, config.outlier_scale)) for p in postings]
    values = [(p, x) for p, x in values if x is not None]
    if len(values) < config.outlier_min_records:
        return
    xs = [x for _, x in values]
    median = statistics.median(xs)
    mad = statistics.median(abs(x - median) for x in xs)
    if mad > 0:
        scale = mad / 0.6745
    else:
        # More than half the postings are identical; Iglewicz & Hoaglin's fallback uses the mean
        # absolute deviation (1.2533 * meanAD estimates the standard deviation).
        mean_ad = sum(abs(x - median) for x in xs) / len(xs)
        if mean_ad == 0:
            return
        scale = 1.253314 * mean_ad
    typical = _unscaled(median, config.outlier_scale)
    group = postings[0]
    for posting, x in values:
        z = (x - median) / scale
        if abs(z) <= config.outlier_z or (config.outlier_direction == "high" and z < 0) or (
                config.outlier_direction == "low" and z > 0):
            continue
        direction = "above" if z > 0 else "below"
        yield posting, Flag(
            ACCOUNT_OUTLIER, "high" if abs(z) >= 2 * config.outlier_z else "medium",
            f"Amount {money(posting.amount, posting.currency)} is far {direction} what account "
            f"{group.account or '(none)'} usually carries (typical {money(typical, group.currency)} over "
            f"{len(values)} postings; robust z = {z:+.1f} on a {config.outlier_scale} scale, cut-off "
            f"{config.outlier_z:g}).",
            score=round(z, 3),
            details={"median": str(typical), "postings": len(values), "scale": config.outlier_scale},
        )


def _scaled(amount: Decimal, scale: str) -> float | None:
    value = abs(float(amount))
    if scale == "linear":
        return value
    return math.log10(value) if value > 0 else None


def _unscaled(x: float, scale: str) -> Decimal:
    return Decimal(str(round(x if scale == "linear" else 10 ** x, 2)))


def duplicate_payments(postings: Iterable[Posting], config: AnalysisConfig) -> Iterator[tuple[Posting, Flag]]:
    """Scans postings SORTED by (counterparty_key, currency, amount, date, item_index) and flags
    each one paid within the window after an earlier one with the same key. Streams: memory
    is bounded by the postings of one (counterparty, currency, amount)."""
    window = dt.timedelta(days=config.duplicate_window_days)
    run: list[Posting] = []
    run_key = None
    for posting in postings:
        key = (posting.counterparty_key, posting.currency, posting.amount)
        if key != run_key:
            run, run_key = [], key
        if posting.counterparty_key and posting.amount != 0:
            earlier = [p for p in run if posting.date - p.date <= window]
            if earlier:
                first = earlier[-1]
                days = (posting.date - first.date).days
                same_reference = bool(posting.reference) and posting.reference == first.reference
                when = "on the same day" if days == 0 else f"{days} day{'s' if days != 1 else ''} later"
                yield posting, Flag(
                    DUPLICATE_PAYMENT, "high" if days == 0 or same_reference else "medium",
                    f"Same amount ({money(posting.amount, posting.currency)}) to the same counterparty "
                    f"({posting.counterparty}) as {first.external_id} of {first.date.isoformat()}, {when}"
                    f"{' with the same reference' if same_reference else ''}. Possible duplicate payment.",
                    score=float(days), related_external_id=first.external_id,
                    details={"days_apart": days, "same_reference": same_reference},
                )
        run.append(posting)
        if len(run) > 64:
            # A long run of identical payments (a monthly fee): only recent ones can still match.
            run = [p for p in run if posting.date - p.date <= window]
