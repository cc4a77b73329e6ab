"""The transaction type's quick validator gives exactly `validate`'s row, or defers to it.

The quick path exists for speed only (docs/design.md, "The batch path"): a record it takes
must be stored as the general readers would store it, and a record it cannot read must reach
them, so that every rejection keeps its reason. These tests compare the two on generated
records, on hostile and edge values, and under each option that changes a reading.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.datatypes.base import BatchContext, RecordRejected
from jobs.datatypes.fields import CURRENCY_SYMBOLS, ISO_4217_ACTIVE
from jobs.datatypes.transaction import TransactionHandler
from jobs.management import sample_data

HANDLER = TransactionHandler()


def context(**options) -> BatchContext:
    return BatchContext(job_id=None, project_id="p", batch_id=1, batch_number=1, data_type="transaction",
                        options=options, attempt=1)


def general(record: dict, ctx: BatchContext):
    try:
        row = HANDLER.validate(record, ctx)
    except RecordRejected as rejected:
        return ("rejected", rejected.code)
    return (tuple(row), row.currency_inferred, row.value_date)


def assert_same(record: dict, ctx: BatchContext) -> bool:
    """True when the quick path took the record (and gave the general row)."""
    row = HANDLER.quick_validator(ctx)(record)
    if row is None:
        return False
    expected = general(record, ctx)
    assert expected[0] != "rejected", f"quick path stored a record the general reader rejects: {record!r}"
    assert (tuple(row), row.currency_inferred, row.value_date) == expected, record
    for got, want in zip(row, expected[0], strict=True):
        assert type(got) is type(want), (record, got, want)
    return True


def test_it_takes_generated_records_and_gives_the_general_rows():
    ctx = context(base_currency="EUR")
    records = list(sample_data.transactions(3000, seed=5, invalid_rate=0.05))
    taken = sum(assert_same(record, ctx) for record in records)
    assert taken >= 0.9 * len(records)  # the common shape is the quick path's, or it buys nothing


EDGE_VALUES = {
    "id": ["A1", " A1", "A1 ", "", " ", "x" * 128, "x" * 129, "=1+2", "\t=1+2", 17, None, ["a"], "٣"],
    "date": ["2024-02-29", "2023-02-29", "2024-13-01", "2024-1-05", " 2024-01-05", "2024-01-05T10:00",
             "٢٠٢٤-٠١-٠٥", "2024-W01-1", "20240105", "05.01.2024", "", None, 20240105],
    "amount": ["12.50", "-0", "-0.00", "+5", "1e5", "1,234.56", "12.34567", "999999999999999.9999",
               "1000000000000000", "٣", "", " 12", 12, -7, True, 10**15, 1.5, None, "0012"],
    "currency": ["EUR", "eur", " EUR", "RUR", "XXX", "ABC", "", None, "€", 978],
    "description": ["Invoice 1", "  two  spaces ", "tab\there", "line\nbreak", "nbsp\u00a0x", "\t=cmd",
                    "=cmd", "x" * 2100, "", None, 5, "\u2028sep"],
    "value_date": [None, "", " ", "2024-01-06", "2024-02-30", "06.01.2024", 3],
    "currency_inferred": [None, False, True, 1],
    "_import_error": [None, {"code": "short_row", "message": "m"}],
}


@pytest.mark.parametrize("field", sorted(EDGE_VALUES))
def test_it_agrees_with_the_general_readers_on_edge_values(field):
    base = {"id": "T1", "date": "2024-01-05", "amount": "10.00", "currency": "USD", "account": "A",
            "counterparty": "C", "description": "D", "reference": ""}
    for options in ({}, {"base_currency": "EUR"}, {"day_first": True}):
        ctx = context(**options)
        for value in EDGE_VALUES[field]:
            record = dict(base)
            if value is None and field in ("value_date", "currency_inferred", "_import_error"):
                record.pop(field, None)
            else:
                record[field] = value
            assert_same(record, ctx)


def test_it_leaves_options_that_change_a_reading_to_the_general_readers():
    assert HANDLER.quick_validator(context(date_format="%d/%m/%Y")) is None
    assert HANDLER.quick_validator(context(decimal_separator=",")) is None
    assert HANDLER.quick_validator(context(decimal_separator=".")) is not None


def test_it_reads_a_code_that_is_also_a_symbol_as_itself():
    # the quick path keeps an active code as written; the general reader maps symbols first
    assert {code: CURRENCY_SYMBOLS[code] for code in set(CURRENCY_SYMBOLS) & ISO_4217_ACTIVE} == {
        code: code for code in set(CURRENCY_SYMBOLS) & ISO_4217_ACTIVE}


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ident=st.one_of(_text, st.integers()),
    day=st.one_of(st.dates(min_value=dt.date(1, 1, 1)).map(str), _text,
                  st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True)),
    amount=st.one_of(st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
                     st.integers(min_value=-10**16, max_value=10**16), _text,
                     st.from_regex(r"-?[0-9]{1,16}(\.[0-9]{1,5})?", fullmatch=True)),
    currency=st.one_of(st.sampled_from(sorted(ISO_4217_ACTIVE)), _text),
    description=st.one_of(st.none(), _text),
)
def test_it_agrees_with_the_general_readers_on_any_record(ident, day, amount, currency, description):
    record = {"id": ident, "date": day, "amount": amount, "currency": currency, "description": description}
    assert_same(record, context())


def test_it_reads_the_stored_types():
    row = HANDLER.quick_validator(context())({"id": "T9", "date": "2024-03-01", "amount": "-5.5",
                                                "currency": "GBP", "value_date": "2024-03-02"})
    assert tuple(row) == ("T9", dt.date(2024, 3, 1), Decimal("-5.5"), "GBP", "", "", "", "")
    assert row.value_date == dt.date(2024, 3, 2) and row.currency_inferred is False
