"""Currency codes (issue 19): every code ISO 4217 defines or defined is a currency, kept as
written; anything else is refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jobs.datatypes.base import RecordRejected
from jobs.datatypes.fields import ISO_4217, ISO_4217_ACTIVE, ISO_4217_HISTORIC, parse_amount, parse_currency


@pytest.mark.parametrize("code", ["DEM", "LTL", "rur", "HRK", "FRF", "XEU", "VEF"])
def test_withdrawn_iso_4217_codes_are_currencies_kept_as_written(code):
    assert parse_currency(code) == code.upper()


def test_rur_is_not_rewritten_as_rub():
    # RUR is the rouble before the 1998 redenomination (1,000 RUR = 1 RUB) and what Russian
    # banks still export for today's rouble: which one a file means is the analyst's call.
    assert parse_currency("RUR") == "RUR" and parse_currency("RUB") == "RUB"


@pytest.mark.parametrize("code", ["ABC", "TBD", "XYZ", "EUX"])
def test_codes_that_never_were_iso_4217_are_refused(code):
    with pytest.raises(RecordRejected) as refused:
        parse_currency(code)
    assert refused.value.code == "unknown_currency"


def test_the_tables_are_disjoint_and_an_amount_may_name_a_withdrawn_currency():
    assert not ISO_4217_ACTIVE & ISO_4217_HISTORIC and ISO_4217 == ISO_4217_ACTIVE | ISO_4217_HISTORIC
    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in ISO_4217)
    assert parse_amount("1.234,56 DEM") == Decimal("1234.56")
    with pytest.raises(RecordRejected):
        parse_amount("12 ABC")
