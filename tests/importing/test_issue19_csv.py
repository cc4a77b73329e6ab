"""Real exports right the first time (issue 19), the CSV and spreadsheet side: files without a
header, Russian and Lithuanian headers and their encodings, balance rows, rows of another width
than the header, signs from a 'CreditDebet' column, zero amounts, the account above a
workbook's header.

Each layout is reproduced by hand from a real export (tests/support/import_corpus.py says
which); the files themselves stay out of the repository (bench/corpus_score.py reads them)."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.errors import InputError
from tests.support import import_corpus as corpus


def _import(export: corpus.Export, mapping=None, options=None):
    from jobs.importing import open_import

    imported = open_import(io.BytesIO(export.content), name=export.name,
                           mapping=export.mapping if mapping is None else mapping, options=options or {},
                           expects_transactions=True)
    return imported, list(imported.dicts())


def _as_expected(export: corpus.Export, records: list[dict]) -> None:
    """Every record has the export's expected values (the currency where the file names one)."""
    assert len(records) == len(export.expected), (export.name, records)
    for record, expected in zip(records, export.expected, strict=True):
        assert "_import_error" not in record, (export.name, record)
        assert record["date"] == expected["date"], export.name
        assert Decimal(record["amount"]) == Decimal(expected["amount"]), export.name
        for field in ("counterparty", "description", "reference", "account"):
            assert record.get(field, "") == expected[field], (export.name, field, record)
        if record.get("currency"):
            assert record["currency"] == expected["currency"], export.name


def test_files_without_a_header_are_read_by_what_their_columns_hold():
    for export in (corpus.raiffeisen_headerless(), corpus.easybank_headerless(), corpus.asn_headerless()):
        imported, records = _import(export)
        _as_expected(export, records)
        guessed = imported.detected["guessed"]
        assert guessed["why"].startswith("the file has no header row") and "date" in guessed and "amount" in guessed
        assert imported.detected["diagnosis"]["guessed"].startswith("read by what they hold: date from column")
        # ids derived as for any dataset without ids: the same on a second reading
        assert all(r["id"].startswith("auto-") for r in records)
        assert [r["id"] for r in _import(export)[1]] == [r["id"] for r in records]
    asn = corpus.asn_headerless()
    guessed = _import(asn)[0].detected["guessed"]
    assert "not the running balance" in guessed["amount"] and "nearest" in guessed["currency"]
    assert "same account number on every row" in guessed["account"]
    # Of two signed amount-shaped columns, the running balance of the other is not the amount.
    from jobs.importing.mapping import guess_columns

    rows = [["13/01/2024", "Coffee shop", "-3.50", "-996.50"], ["14/01/2024", "Salary", "2,000.00", "1,003.50"],
            ["15/01/2024", "Rent", "-900.00", "103.50"], ["16/01/2024", "Refund", "10.00", "113.50"]]
    positions, how = guess_columns(rows)
    assert positions["amount"] == 2 and "not the running balance" in how["amount"]
    assert guess_columns([row[:2] for row in rows]) == ({}, {})  # no amount: nothing is guessed


def test_a_header_of_unknown_names_is_read_by_what_its_columns_hold():
    export = corpus.nordea_finnish_header()
    imported, records = _import(export)
    _as_expected(export, records)
    assert imported.detected["guessed"]["why"].startswith("no column of the header is named as a date or an amount")
    assert imported.detected["diagnosis"]["found"]["amount"] == "Määrä"


def test_a_table_without_a_header_and_without_dates_and_amounts_is_still_refused():
    from jobs.importing import open_import

    with pytest.raises(InputError, match="no date or amount column"):
        open_import(io.BytesIO(b"1;alpha;2\n3;beta;4\n"), name="x.csv", expects_transactions=True)


def test_russian_headers_and_windows_1251():
    from jobs.importing.headers import field_for
    from jobs.importing.sources import detect_encoding

    for export in (corpus.sberbank_russian(), corpus.alfabank_cp1251()):
        imported, records = _import(export)
        _as_expected(export, records)
    assert _import(corpus.alfabank_cp1251())[0].detected["encoding"] == "cp1251"
    mapping = _import(corpus.sberbank_russian())[0].detected["mapping"]
    # the processing date and the amount in the account's currency; not the operation's currency
    assert mapping["date"] == "Дата обработки операции" and mapping["amount"] == "Сумма в валюте счета"
    assert "currency" not in mapping
    assert field_for("Тип счёта") is None and field_for("Номер счета") == "account"
    # Western 8-bit text stays Windows-1252; Lithuanian is Windows-1257
    assert detect_encoding("Empfänger;Überweisung;Gebühr;Straße;Müller;Zürich;Café".encode("cp1252")) == "cp1252"
    assert detect_encoding("Mokestis už sąskaitos aptarnavimą, išankstinis, Šiauliai".encode("cp1257")) == "cp1257"


def test_lithuanian_italian_and_other_column_names():
    from jobs.importing.headers import field_for
    from jobs.importing.mapping import detect_columns

    for export in (corpus.swedbank_lithuanian(), corpus.bancoposta_italian(), corpus.mint_original_description(),
                   corpus.ingdiba_kontonummer()):
        _, records = _import(export)
        _as_expected(export, records)
    assert field_for("Descrizione operazioni") == "description" and field_for("Original Description") == \
        "description"
    # 'Kontonummer' is the holder's account (ING-DiBa), but not beside a payee column (the
    # payee's account in older Sparkasse exports): the holder's account must win (issue 19)
    assert detect_columns(["Kontonummer", "Text", "Datum", "Betrag"])["account"] == "Kontonummer"
    assert "account" not in detect_columns(["Buchungstag", "Begünstigter/Zahlungspflichtiger", "Kontonummer", "BLZ",
                                            "Betrag"])
    assert detect_columns(["Auftragskonto", "Buchungstag", "Beguenstigter/Zahlungspflichtiger", "Kontonummer",
                           "Betrag"])["account"] == "Auftragskonto"


def test_balance_rows_are_skipped_and_counted_with_their_reason():
    for export, count in ((corpus.bancoposta_italian(), 2), (corpus.swedbank_lithuanian(), 3)):
        imported, records = _import(export)
        _as_expected(export, records)
        skipped = imported.detected["skipped_rows"]
        assert skipped["count"] == count and skipped["reasons"] == {"a balance or turnover line": count}
        assert "not records and were skipped" in imported.detected["diagnosis"]["skipped_rows"]
    # The balance row's date still decides the order of the dates ('31/12/17' among '01/08/18').
    imported, _ = _import(corpus.bancoposta_italian())
    assert all(d["day_first"] for d in imported.detected["dates"])
    # A movement that mentions a balance, or a balance phrase beside a counterparty, is read.
    text = ("Date,Description,Counterparty,Amount\n"
            "2024-01-02,Saldo-Ausgleich Kreditkarte,,-10.00\n"
            "2024-01-03,Balance,ACME Ltd,-20.00\n"
            "2024-01-31,Closing balance 31.01.2024,,1000.00\n")
    imported, records = _import(corpus.Export("x.csv", text.encode(), []), mapping={"default_currency": "EUR"})
    assert [r["amount"] for r in records] == ["-10.00", "-20.00"]
    assert imported.detected["skipped_rows"]["count"] == 1


@pytest.mark.django_db
def test_the_preview_and_the_job_say_how_many_rows_were_skipped_and_why(api_users, redis):
    from jobs.models import ProcessingJob
    from tests.conftest import api_client, drain

    client = api_client(api_users["alice"])
    export = corpus.bancoposta_italian()

    def post(url):
        return client.post(url, {"project_id": "alice-audit", "data_type": "transaction",
                                  "file": SimpleUploadedFile(export.name, export.content),
                                  "mapping": json.dumps(export.mapping)}, format="multipart")

    preview = post("/api/v1/batch-jobs/preview")
    assert preview.status_code == 200, preview.content
    assert preview.json()["detected"]["skipped_rows"]["count"] == 2
    response = post("/api/v1/batch-jobs/submit")
    assert response.status_code == 201, response.content
    drain(response.json()["job_id"])
    job = ProcessingJob.objects.get(id=response.json()["job_id"])
    assert job.total_items == 2 and job.items_processed == 2 and job.items_failed == 0
    assert job.import_details["skipped_rows"]["count"] == 2
    assert "SALDO INIZIALE" in job.import_details["skipped_rows"]["examples"][0]


def test_rows_of_another_width_are_read_where_unambiguous_and_fail_alone_otherwise():
    for export in (corpus.livebank_wide_rows(), corpus.danske_merged_fields(), corpus.swedbank_lithuanian()):
        imported, records = _import(export)
        _as_expected(export, records)
        assert imported.detected["repaired_rows"]["count"] >= 2
    _, records = _import(corpus.livebank_wide_rows(), mapping={})
    assert records[0]["description"] == "Datenträger-Umsatz"
    imported, _ = _import(corpus.danske_merged_fields())
    assert "held 3 fields quoted together" in imported.detected["repaired_rows"]["examples"][0]
    # Extra text after a currency (not a text column) is not guessed at: that row fails alone,
    # and so does a record spanning lines of the wrong width that is not the file's last.
    text = (b"Date,Description,Amount,Currency\n"
            b"2026-01-02,Coffee,-3.50,EUR\n"
            b"2026-01-04,Cake,-4.00,EUR,oops,more\n"
            b'2026-01-05,"Lunch\nat noon",-12.00\n'
            b"2026-01-06,Tea,-2.50,EUR\n")
    _, records = _import(corpus.Export("x.csv", text, []), mapping={})
    assert [r.get("_import_error", {}).get("code") for r in records] == [None, "malformed_row", None, None]
    # One quote never closed swallows the rest of the file: that still refuses it.
    with pytest.raises(InputError, match="is a quote not closed"):
        _import(corpus.Export("x.csv", text + b'2026-01-07,"Soup,-5.00\n2026-01-08,Bread,-1.00,EUR\n', []),
                mapping={})


def test_an_unsigned_amount_takes_its_sign_from_a_credit_debet_column():
    export = corpus.knab_credit_debet()
    imported, records = _import(export)
    _as_expected(export, records)
    assert imported.detected["sign"].startswith("from column 'CreditDebet'")


def test_zero_amounts_are_kept_unless_the_mapping_skips_them():
    from jobs.importing.mapping import Mapping

    export = corpus.livebank_wide_rows()
    imported, records = _import(export, mapping={})
    assert [r["amount"] for r in records] == ["150.00", "0.00", "-100.00"]
    assert "skipped_rows" not in imported.detected
    imported, records = _import(export)
    assert [r["amount"] for r in records] == ["150.00", "-100.00"]
    assert imported.detected["skipped_rows"]["reasons"] == {"the amount is zero": 1}
    assert Mapping.parse({"skip_zero_amounts": True}).as_dict() == {"skip_zero_amounts": True}
    assert Mapping.parse({"skip_zero_amounts": False}).is_empty
    with pytest.raises(InputError, match="skip_zero_amounts must be true or false"):
        Mapping.parse({"skip_zero_amounts": "yes"})


def test_the_account_above_a_workbooks_header_is_the_holders():
    export = corpus.handelsbanken_workbook()
    imported, records = _import(export)
    _as_expected(export, records)
    assert imported.detected["account"].startswith("123 123 123")


def test_a_pending_payment_takes_its_operation_date_and_the_card_comes_from_above_the_table():
    export = corpus.vtb_pending_card()
    imported, records = _import(export)
    _as_expected(export, records)
    assert imported.detected["mapping"]["date"] == "Дата обработки"
    assert imported.detected["mapping"]["date_fallback"] == "Дата операции"
    assert imported.detected["account"].startswith("462235******0069")
    # Without the fallback column the pending payment fails alone for its missing date.
    _, records = _import(export, mapping={"date_fallback": "Дата обработки"})
    assert records[1]["date"] == ""


def test_quotes_a_bank_left_unescaped_inside_quoted_fields_are_kept():
    # Swedbank (Lithuania) writes a company's quoted name inside a quoted field as it is:
    # "UAB "Naktida"" (RFC 4180 would double them). csv alone read it as 'UAB Naktida""'.
    text = ('"Data","Gavėjas","Paaiškinimai","Suma","Valiuta"\n'
            '"2012-01-26","UAB "Naktida"","PIRKINYS 2012.01.25 UAB "Naktida" Vilnius","-12.20","EUR"\n'
            '"2012-01-27","Kavinė","Kava ""Espresso"" ir pyragas","-3.10","EUR"\n')
    imported, records = _import(corpus.Export("swedbank.csv", text.encode(), []), mapping={})
    assert [r["counterparty"] for r in records] == ['UAB "Naktida"', "Kavinė"]
    assert records[0]["description"] == 'PIRKINYS 2012.01.25 UAB "Naktida" Vilnius'
    assert records[1]["description"] == 'Kava "Espresso" ir pyragas'  # escaped quotes read as RFC 4180 says


def test_a_file_that_escapes_its_quotes_is_read_by_csv_alone():
    import csv

    from jobs.importing.sources import has_bare_quotes, loose_fields

    lines = ['"a","say ""hi""","x"\n', '"b","two ""words"" here",""\n']
    rows = list(csv.reader(lines))
    assert not has_bare_quotes(lines, rows, ",")
    assert loose_fields('"a","UAB "N"",x\n', ",") == ["a", 'UAB "N"', "x"]
    assert loose_fields('"a","open\n', ",") is None  # the field goes on past the line


@pytest.mark.django_db
def test_the_value_date_is_stored_beside_the_booking_date_and_an_unreadable_one_fails_alone(api_users, redis):
    from jobs.models import ProcessingJob, Transaction
    from tests.conftest import api_client, drain

    # A Sparkasse export (Freiburg): booked on 28.03., valued on 03.04.; the second row's
    # value date is unreadable, the third has none.
    text = ('"Auftragskonto";"Buchungstag";"Valutadatum";"Verwendungszweck";"Beguenstigter/Zahlungspflichtiger";'
            '"Betrag";"Waehrung"\n'
            '"12345678";"28.03.18";"03.04.18";"MIETE04/18";"ASDF Immobilien GmbH";"-1234,56";"EUR"\n'
            '"12345678";"28.03.18";"31.02.18";"Geschenk";"Sabrina Mustermann";"123,00";"EUR"\n'
            '"12345678";"29.03.18";"";"Abschluss";"Sparkasse";"-2,00";"EUR"\n')
    client = api_client(api_users["alice"])
    response = client.post("/api/v1/batch-jobs/submit", {
        "project_id": "alice-audit", "data_type": "transaction",
        "file": SimpleUploadedFile("umsaetze.csv", text.encode("cp1252"))}, format="multipart")
    assert response.status_code == 201, response.content
    drain(response.json()["job_id"])
    job = ProcessingJob.objects.get(id=response.json()["job_id"])
    stored = list(Transaction.objects.filter(job=job).order_by("item_index").values_list("date", "value_date"))
    assert [(d.isoformat(), v and v.isoformat()) for d, v in stored] == [("2018-03-28", "2018-04-03"),
                                                                         ("2018-03-29", None)]
    assert job.items_failed == 1
    assert job.failures.get().error_code == "invalid_value_date"
