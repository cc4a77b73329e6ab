"""Business-day calendar for the weekend / holiday red flag.

The default holiday calendar is TARGET2's (the euro area's payment system): it is closed on
New Year's Day, Good Friday, Easter Monday, 1 May, 25 and 26 December, so a payment posted
on those days did not move through the banking system that day. Teams add their own
country holidays through the `holidays` option rather than us guessing a jurisdiction.
"""

from __future__ import annotations

import datetime as dt
import functools

CALENDARS = ("target2", "none")


def easter_sunday(year: int) -> dt.date:
    """Western (Gregorian) Easter Sunday, by the anonymous Gregorian algorithm."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return dt.date(year, month, day + 1)


@functools.lru_cache(maxsize=256)
def target2_holidays(year: int) -> dict[dt.date, str]:
    easter = easter_sunday(year)
    return {
        dt.date(year, 1, 1): "New Year's Day",
        easter - dt.timedelta(days=2): "Good Friday",
        easter + dt.timedelta(days=1): "Easter Monday",
        dt.date(year, 5, 1): "Labour Day",
        dt.date(year, 12, 25): "Christmas Day",
        dt.date(year, 12, 26): "St Stephen's Day",
    }


def holiday_name(day: dt.date, calendar: str = "target2", extra: dict[dt.date, str] | None = None) -> str | None:
    """The holiday's name when `day` is one in `calendar` or in `extra`, else None."""
    if extra and day in extra:
        return extra[day]
    if calendar == "target2":
        return target2_holidays(day.year).get(day)
    return None
