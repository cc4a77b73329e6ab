"""A reconciliation batch reads its candidates through merged (day, amount range) windows
(`jobs.datatypes.reconciliation.search_windows`): a ledger row is in a window exactly when it is
in some line's own search window, so merging loses no candidate and adds none."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.datatypes.reconciliation import search_windows
from jobs.forensics.matching import Line, MatchParams

START = dt.date(2025, 1, 1)
amounts = st.decimals(min_value=Decimal("-50000"), max_value=Decimal("50000"), places=2)
lines = st.lists(st.tuples(st.integers(0, 40), amounts), min_size=1, max_size=40)
probes = st.lists(st.tuples(st.integers(-10, 50), amounts), min_size=1, max_size=60)


def _line(day: int, amount: Decimal, n: int = 0) -> Line:
    return Line(n, f"L{n}", START + dt.timedelta(days=day), amount, "EUR", "", "")


def _in_own_window(line: Line, params: MatchParams, date: dt.date, amount: Decimal) -> bool:
    low, high = params.search_range(line.amount)
    return abs((date - line.date).days) <= params.search_days and low <= amount <= high


@settings(max_examples=300, deadline=None)
@given(lines, probes, st.sampled_from([{}, {"fuzzy_amount_pct": 0.0, "fuzzy_date_window_days": 0},
                                       {"invert_sign": True, "fuzzy_date_window_days": 2}]))
def test_it_merges_windows_without_losing_or_adding_a_candidate(drawn, probed, options):
    params = MatchParams.from_options(options)
    batch = [_line(day, amount, n) for n, (day, amount) in enumerate(drawn)]
    windows = search_windows(batch, params)
    for day, amount in probed + [(d, a) for d, a in drawn]:
        date = START + dt.timedelta(days=day)
        wanted = any(_in_own_window(line, params, date, amount) for line in batch)
        found = any(d == date and low <= amount <= high for d, low, high in windows)
        assert found == wanted, (date, amount)
    # Merged: no two windows of a day overlap, so no row is read twice for one day.
    by_day: dict[dt.date, list[tuple[Decimal, Decimal]]] = {}
    for day, low, high in windows:
        by_day.setdefault(day, []).append((low, high))
    for ranges in by_day.values():
        ranges.sort()
        assert all(earlier[1] < later[0] for earlier, later in zip(ranges, ranges[1:], strict=False))


def test_it_asks_one_window_a_day_for_lines_of_one_day_with_overlapping_amounts():
    params = MatchParams()
    batch = [_line(3, Decimal("100.00") + n, n) for n in range(5)]  # +-2 % ranges overlap
    windows = search_windows(batch, params)
    assert len(windows) == 2 * params.search_days + 1
    assert windows[0] == (START + dt.timedelta(days=3 - params.search_days), Decimal("98.0000"), Decimal("106.0800"))
