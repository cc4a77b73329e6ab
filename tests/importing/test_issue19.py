"""Real exports right the first time (issue 19): no silent loss, the bank's meaning kept.

Each test reads a layout reproduced by hand from a real export (tests/support/import_corpus.py
says which) through the API, the way a user would, and checks what was stored and shown."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import ProcessingJob, Project, Transaction
from tests.conftest import api_client, drain
from tests.support import import_corpus as corpus

SUBMIT = "/api/v1/batch-jobs/submit"
PREVIEW = "/api/v1/batch-jobs/preview"


def post_file(client, name: str, content: bytes, url: str = SUBMIT, mapping=None, options=None,
              project: str = "alice-audit"):
    data = {"project_id": project, "data_type": "transaction", "file": SimpleUploadedFile(name, content)}
    if mapping is not None:
        data["mapping"] = json.dumps(mapping)
    if options is not None:
        data["options"] = json.dumps(options)
    return client.post(url, data, format="multipart")


def run(client, name: str, content: bytes, **kwargs) -> ProcessingJob:
    response = post_file(client, name, content, **kwargs)
    assert response.status_code == 201, response.content
    drain(response.json()["job_id"])
    return ProcessingJob.objects.get(id=response.json()["job_id"])


def _import(content: bytes, name: str, mapping=None, options=None):
    from jobs.importing import open_import

    imported = open_import(io.BytesIO(content), name=name, mapping=mapping, options=options or {},
                           expects_transactions=True)
    return imported, list(imported.dicts())


# 1. OFX FITIDs are unique per account only -----------------------------------------------

@pytest.mark.django_db
def test_ofx_fitids_are_scoped_by_their_account_and_duplicates_are_shown(api_users, redis):
    client = api_client(api_users["alice"])
    other_account = corpus.OFX_V1.replace("<ACCTID>9876543", "<ACCTID>1111111")
    first = run(client, "checking.ofx", corpus.OFX_V1.encode("cp1252"))
    second = run(client, "savings.ofx", other_account.encode("cp1252"))
    assert first.summary["stored"] == 2 and second.summary["stored"] == 2, (first.summary, second.summary)
    assert set(Transaction.objects.values_list("external_id", flat=True)) == {
        "9876543/20260203-1", "9876543/20260205-7", "1111111/20260203-1", "1111111/20260205-7"}
    # The same FITID in the same account with other values: counted and shown with its reason.
    changed = corpus.OFX_V1.replace("<TRNAMT>-1036.47", "<TRNAMT>-1036.48")
    third = run(client, "checking-corrected.ofx", changed.encode("cp1252"))
    summary = third.summary
    assert summary["duplicates_across_jobs"] == 1 and summary["already_stored"] == 1, summary
    reasons = {d["id"]: d["reason"] for d in summary["duplicates"]}
    assert "already stored with other values" in reasons["9876543/20260203-1"]
    assert '"replace": true' in reasons["9876543/20260203-1"]
    page = client.get(f"/api/v1/batch-jobs/{third.id}").json()
    assert page["summary"]["duplicates"][0]["reason"]


# 2. Identity from the file's own bytes: a corrected reading replaces ------------------------

@pytest.mark.django_db
def test_reuploading_with_a_corrected_mapping_replaces_never_duplicates(api_users, redis):
    client = api_client(api_users["alice"])
    export = corpus.us_brokerage()
    wrong = run(client, export.name, export.content, mapping={"description": "Action"})
    assert wrong.summary["stored"] == 3
    assert sorted(Transaction.objects.values_list("description", flat=True)) == ["ACH", "CHECK", "DIRECT DEP"]
    fixed = run(client, export.name, export.content, mapping={"description": "Description"})
    assert Transaction.objects.count() == 3
    assert fixed.summary["replaced"] == 3 and fixed.summary["stored"] == 0, fixed.summary
    assert sorted(Transaction.objects.values_list("description", flat=True)) == [
        "ACME SUPPLIES", "CHECK 1044", "PAYROLL ACME CORP"]
    assert set(Transaction.objects.values_list("job_id", flat=True)) == {fixed.id}
    # The same file again with the same reading changes nothing.
    again = run(client, export.name, export.content, mapping={"description": "Description"})
    assert again.summary["stored"] == 0 and again.summary["already_stored"] == 3
    # Another file whose rows have the same ids but other values is kept apart unless asked.
    other = export.content.replace(b"ACME SUPPLIES", b"ACME SUPPLIES INC")
    assert _import(export.content, export.name)[1][0]["id"] == _import(export.content, export.name,
                                                                     {"description": "Action"})[1][0]["id"]
    assert _import(other, export.name)[1][1]["id"] == _import(export.content, export.name)[1][1]["id"]


# 3. One rule for ids everywhere -----------------------------------------------------------

@pytest.mark.django_db
def test_items_and_json_files_follow_one_rule_for_ids(api_users, redis):
    client = api_client(api_users["alice"])
    records = [{"date": "2026-05-10", "amount": "-20.00", "currency": "EUR", "description": "Taxi"},
               {"date": "2026-05-10", "amount": "-20.00", "currency": "EUR", "description": "Taxi"}]
    body = client.post(SUBMIT, {"project_id": "alice-audit", "data_type": "transaction", "items": records},
                       format="json")
    assert body.status_code == 201, body.content
    drain(body.json()["job_id"])
    from_items = list(Transaction.objects.order_by("item_index").values_list("external_id", flat=True))
    Transaction.objects.all().delete()
    from_file = run(client, "expenses.json", json.dumps(records).encode())
    assert from_file.summary["stored"] == 2
    assert list(Transaction.objects.order_by("item_index").values_list("external_id", flat=True)) == from_items
    assert len(set(from_items)) == 2 and all(i.startswith("auto-") for i in from_items)
    # A dataset whose records carry ids: one without fails alone, with the reason, on both paths.
    carrying = [{"id": "A-1", **records[0]}, records[1]]
    for job in (run(client, "carrying.jsonl", "\n".join(json.dumps(r) for r in carrying).encode()),):
        failure = job.failures.get()
        assert failure.error_code == "missing_id" and "carry ids" in failure.message
    body = client.post(SUBMIT, {"project_id": "alice-audit", "data_type": "transaction", "items": carrying},
                       format="json")
    drain(body.json()["job_id"])
    failure = ProcessingJob.objects.get(id=body.json()["job_id"]).failures.get()
    assert failure.error_code == "missing_id" and "carry ids" in failure.message
    # A table with an id column: an empty id cell is not replaced by a made-up id.
    table = b"Transaction ID,Date,Amount,Currency\nT-1,2026-01-02,5.00,EUR\n,2026-01-03,6.00,EUR\n"
    job = run(client, "ids.csv", table)
    assert job.failures.get().error_code == "missing_id"


# 4. A row with one field more or fewer --------------------------------------------------

@pytest.mark.django_db
def test_rows_one_field_wider_or_narrower_are_read_and_the_rest_fail_alone(api_users, redis):
    client = api_client(api_users["alice"])
    export = corpus.lloyds_trailing_comma()
    _, records = _import(export.content, export.name, export.mapping)
    assert [r["amount"] for r in records] == ["-8.99", "2000"]
    ragged = (b"Date,Description,Amount,Currency\n"
              b"2026-01-02,Coffee,-3.50,EUR,\n"          # one extra, empty field: read
              b"2026-01-03,Tea,-2.50\n"                  # the last field omitted: read
              b"2026-01-04,Cake,-4.00,EUR,oops,more\n"   # extra fields with text: this row fails alone
              b"2026-01-05,Lunch,-12.00,EUR\n")
    job = run(client, "ragged.csv", ragged, mapping={"default_currency": "EUR"})
    assert job.status == "completed" and job.items_processed == 3 and job.items_failed == 1
    failure = job.failures.get()
    assert failure.error_code == "malformed_row" and "line 4 has 6 fields where the header has 4" in failure.message
    assert sorted(Transaction.objects.values_list("description", flat=True)) == ["Coffee", "Lunch", "Tea"]


# 5. Sign from a type column ---------------------------------------------------------------

def test_unsigned_amounts_take_their_sign_from_a_debit_credit_column():
    for export in (corpus.ing_nl_af_bij(), corpus.soll_haben_marker()):
        imported, records = _import(export.content, export.name)
        assert [Decimal(r["amount"]) for r in records] == [Decimal(e["amount"]) for e in export.expected]
        assert imported.detected["sign"].startswith("from column")
    text = b"Date;Memo;Amount;Way\n2024-01-02;rent;750,00;OUTGOING\n2024-01-03;refund;20,00;INCOMING\n"
    imported, records = _import(text, "custom.csv", {"direction": "Way", "debit_values": ["OUTGOING"],
                                                     "default_currency": "EUR"})
    assert [r["amount"] for r in records] == ["-750.00", "20.00"]
    # A signed amount column is left alone even beside a DEBIT/CREDIT column (Chase's "Details").
    chase = corpus.chase_details()
    _, records = _import(chase.content, chase.name, chase.mapping)
    assert [r["amount"] for r in records] == ["-45.99", "2500.00", "-120.00"]


# 6. The holder's account -------------------------------------------------------------------

def test_the_holders_account_wins_over_the_counterpartys():
    for export in (corpus.sparkasse_camt(), corpus.ing_nl_af_bij(), corpus.dkb_preamble_account()):
        imported, records = _import(export.content, export.name, export.mapping)
        assert [r.get("account") for r in records] == [e["account"] for e in export.expected], export.name
    from jobs.importing.headers import field_for

    assert field_for("Auftragskonto") == "account" and field_for("IBAN") is None
    assert field_for("Kontonummer/IBAN") is None and field_for("Tegenrekening") is None


# 7. Currency in the header; the project's base currency; the account above the header -----

@pytest.mark.django_db
def test_header_currency_base_currency_and_preamble_account(api_users, redis):
    client = api_client(api_users["alice"])
    dkb = corpus.dkb_preamble_account()
    imported, records = _import(dkb.content, dkb.name)
    assert {r["currency"] for r in records} == {"EUR"} and "header" in imported.detected["currency"]
    set_base = client.put("/api/v1/projects/alice-audit/base-currency", {"base_currency": "gbp"}, format="json")
    assert set_base.status_code == 200 and set_base.json()["base_currency"] == "GBP", set_base.content
    assert client.put("/api/v1/projects/alice-audit/base-currency", {"base_currency": "XYZ"},
                      format="json").status_code == 400
    lloyds = corpus.lloyds_trailing_comma()
    preview = post_file(client, lloyds.name, lloyds.content, url=PREVIEW).json()
    assert all(row["valid"] for row in preview["rows"]), preview["rows"]
    assert preview["rows"][0]["record"]["currency"] == "GBP" and preview["rows"][0]["record"]["currency_inferred"]
    assert "base currency" in preview["detected"]["diagnosis"]["not_found"]["currency"]
    job = run(client, lloyds.name, lloyds.content)
    assert job.options["base_currency"] == "GBP"
    assert set(Transaction.objects.filter(job=job).values_list("currency", "currency_inferred")) == {("GBP", True)}
    stated = run(client, dkb.name, dkb.content)
    assert set(Transaction.objects.filter(job=stated).values_list("currency", "currency_inferred")) == {
        ("EUR", False)}
    assert set(Transaction.objects.filter(job=stated).values_list("account", flat=True)) == {
        "DE07123412341234123412"}
    assert Project.objects.get(id="alice-audit").base_currency == "GBP"


# 8. Errors that say what to do --------------------------------------------------------------

@pytest.mark.django_db
def test_errors_say_what_to_do_and_a_job_that_failed_whole_says_so(api_users, redis):
    client = api_client(api_users["alice"])
    # Unknown names over unsigned whole numbers: nothing can be read by what it holds either
    # (tests/importing/test_issue19_csv.py has the columns that can), so the file is refused
    # with the columns it considered and the mapping line that fixes it.
    unknown = b"Dia;Concepto;Cifra\n02/01/2024;Cafe;3\n03/01/2024;Libros;12\n"
    refused = post_file(client, "raro.csv", unknown)
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "no date or amount column was recognised among the columns 'Dia', 'Concepto', 'Cifra'" in detail
    assert '{"date": "Dia", "amount": "Cifra"}' in detail
    no_currency = b"Date,Description,Amount\n2026-01-02,Coffee,-3.50\n2026-01-03,Tea,-2.50\n"
    preview = post_file(client, "plain.csv", no_currency, url=PREVIEW).json()
    diagnosis = preview["detected"]["diagnosis"]
    assert diagnosis["found"] == {"date": "Date", "description": "Description", "amount": "Amount"}
    assert "missing_currency" in diagnosis["not_found"]["currency"] and "default_currency" in diagnosis["fix"]
    assert "default_currency" in preview["rows"][0]["error"]["message"]
    job = run(client, "plain.csv", no_currency)
    assert job.items_failed == 2
    assert job.summary["warning"].startswith("every record failed for the same reason, missing_currency")


@pytest.mark.django_db
def test_the_upload_and_job_pages_show_the_diagnosis(api_users, redis, client):
    client.force_login(api_users["alice"])
    no_currency = b"Date,Description,Amount\n2026-01-02,Coffee,-3.50\n2026-01-02,Coffee,-3.50\n"
    response = client.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction", "priority": 5,
                                          "action": "preview",
                                          "file": SimpleUploadedFile("plain.csv", no_currency)})
    page = response.content.decode()
    assert response.status_code == 200, page[:2000]
    assert "Import diagnosis" in page and "every row will fail missing_currency" in page
    api = api_client(api_users["alice"])
    job = run(api, "plain.csv", no_currency)
    page = client.get(f"/jobs/{job.id}/").content.decode()
    assert "Import diagnosis" in page and "every record failed for the same reason" in page


# 9. Duplicate ids inside one file --------------------------------------------------------

@pytest.mark.django_db
def test_duplicate_ids_in_one_file_are_warned_in_preview_and_shown_on_the_job(api_users, redis, client):
    api = api_client(api_users["alice"])
    text = ("Order ID,Date,Amount,Currency,Description\n"
            + "".join(f"{'O-1' if i % 3 else f'O-{i}'},2026-02-{i + 1:02d},-{i + 1}.00,EUR,item {i}\n"
                      for i in range(13))).encode()
    preview = post_file(api, "orders.csv", text, url=PREVIEW, mapping={"id": "Order ID"}).json()
    assert preview["warnings"][0].startswith("the id column is not unique: 7 record(s) repeat an id"), preview
    job = run(api, "orders.csv", text, mapping={"id": "Order ID"})
    assert job.summary["stored"] == 6 and job.summary["duplicates_within_job"] == 7, job.summary
    assert "appears more than once in this upload" in job.summary["duplicates"][0]["reason"]
    client.force_login(api_users["alice"])
    page = client.get(f"/jobs/{job.id}/").content.decode()
    assert "Records not stored as new" in page and "appears more than once in this upload" in page


# 10. OFX with leading blank lines; no Python reprs -------------------------------------------

def test_ofx_with_leading_blank_lines_is_read_and_errors_carry_no_reprs():
    export = corpus.ofx_leading_blank_lines()
    imported, records = _import(export.content, export.name)
    assert imported.format == "ofx" and [r["id"] for r in records] == [e["external_id"] for e in export.expected]
    from jobs.errors import InputError

    broken = b"\n\nOFXHEADER:100\nDATA:OFXSGML\n<OFX><BANKMSGSRSV1><STMTTRNRS>"
    with pytest.raises(InputError) as refused:
        _import(broken, "broken.ofx")
    assert "object at 0x" not in str(refused.value) and "<Element" not in str(refused.value)
    assert str(refused.value).startswith("the OFX file could not be parsed: ")


# 11. Header synonyms and date labels ------------------------------------------------------

def test_header_synonyms_and_date_labels():
    from jobs.importing.headers import field_for

    expected = {"total": "amount", "created": "date", "JournalDate": "date", "Monn.": "currency",
                "Reason": "description", "Account Name": "account", "Partner Name": "counterparty",
                "Merchant Name": "counterparty", "Data operazione": "date", "Importo": "amount",
                "Causale": "description", "Boekdatum": "date", "Bedrag": "amount", "Omschrijving": "description",
                "Naam tegenpartij": "counterparty", "Data Lançamento": "date", "Valor": "amount",
                "Descrição": "description", "Moeda": "currency"}
    assert {name: field_for(name) for name in expected} == expected
    for export, pattern in ((corpus.journal_synonyms(), "DD-Mon-YY"), (corpus.revolut_timestamps(),
                                                                         "YYYY-MM-DD hh:mm")):
        imported, records = _import(export.content, export.name)
        assert imported.detected["dates"][0]["pattern"] == pattern
        assert [r["date"] for r in records] == [e["date"] for e in export.expected]


# MT940 and CAMT.053 ----------------------------------------------------------------------

def test_mt940_and_camt053_statements_are_read():
    for export, fmt in ((corpus.mt940_ing(), "mt940"), (corpus.camt053_statement(), "camt")):
        imported, records = _import(export.content, export.name)
        assert imported.format == fmt
        for record, want in zip(records, export.expected, strict=True):
            assert (record["date"], Decimal(record["amount"]), record["currency"], record["account"],
                    record["counterparty"]) == (want["date"], Decimal(want["amount"]), want["currency"],
                                                want["account"], want["counterparty"]), export.name
    _, records = _import(corpus.mt940_ing().content, "statement.txt")
    assert len(records) == 2  # told from the content, whatever the name


def test_statements_keep_within_the_budget(settings):
    from jobs.errors import LimitExceeded

    settings.ZENITH_MAX_OFX_BYTES = 200
    with pytest.raises(LimitExceeded) as refused:
        _import(corpus.CAMT053.encode(), "big.xml")
    assert refused.value.setting == "ZENITH_MAX_OFX_BYTES"
