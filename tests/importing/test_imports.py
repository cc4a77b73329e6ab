"""Importing real-world exports: a corpus of differently shaped bank and ledger files, each
imported through the API on real workers with every value checked exactly; re-uploads are
idempotent; the preview endpoint reads files exactly as the import does."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import ImportMapping, ProcessingJob, Transaction
from tests.conftest import api_client, assert_accounting, wait_for_job
from tests.support.import_corpus import Export, corpus, german_sparkasse

SUBMIT = "/api/v1/batch-jobs/submit"
PREVIEW = "/api/v1/batch-jobs/preview"
FIELDS = ("external_id", "date", "amount", "currency", "counterparty", "description", "reference", "account")


def upload(client, export: Export, url: str = SUBMIT, **fields):
    import json

    data = {"project_id": "alice-audit", "data_type": "transaction",
            "file": SimpleUploadedFile(export.name, export.content), **fields}
    if export.mapping is not None:
        data["mapping"] = json.dumps(export.mapping)
    return client.post(url, data, format="multipart")


def stored(job) -> list[dict]:
    rows = Transaction.objects.filter(job=job).order_by("item_index").values(*FIELDS)
    return [{**row, "date": row["date"].isoformat()} for row in rows]


def check_values(export: Export, rows: list[dict]) -> list[str]:
    problems = []
    if len(rows) != len(export.expected):
        return [f"{export.name}: {len(rows)} transactions, expected {len(export.expected)}"]
    for row, want in zip(rows, export.expected, strict=True):
        for field in FIELDS:
            expected, got = want[field], row[field]
            if field == "external_id" and expected is None:
                if not str(got).startswith("auto-"):
                    problems.append(f"{export.name}: id {got!r} is not a derived id")
                continue
            if field == "amount":
                expected, got = Decimal(expected), Decimal(got)
            if expected != got:
                problems.append(f"{export.name}: {field} {got!r} != expected {expected!r}")
    return problems


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_corpus_imports_through_the_api_on_real_workers(api_users, start_workers):
    exports = corpus()
    assert len(exports) >= 15
    start_workers(2)
    client = api_client(api_users["alice"])
    problems, jobs = [], {}
    for export in exports:
        response = upload(client, export)
        if response.status_code != 201:
            problems.append(f"{export.name}: {response.status_code} {response.json().get('detail')}")
            continue
        jobs[export.name] = response.json()["job_id"]
    for export in exports:
        if export.name not in jobs:
            continue
        job = wait_for_job(jobs[export.name], timeout=90)
        if job.status != "completed" or job.items_failed:
            failures = list(job.failures.values_list("item_index", "message"))
            problems.append(f"{export.name}: {job.status}, failures {failures}")
            continue
        assert_accounting(job)
        problems += check_values(export, stored(job))
        assert job.import_details.get("format") in ("csv", "xlsx", "ofx", "jsonl", "json", "mt940", "camt")
    assert not problems, "\n".join(problems)

    # Re-uploading every file changes nothing: the derived ids are stable.
    before = Transaction.objects.count()
    again = [upload(client, export).json()["job_id"] for export in exports]
    for job_id in again:
        job = wait_for_job(job_id, timeout=90)
        assert job.status == "completed" and job.summary.get("stored", 0) == 0, (job.input_name, job.summary)
    assert Transaction.objects.count() == before


@pytest.mark.django_db
def test_preview_reads_like_the_import(api_users, redis):
    from tests.conftest import drain

    client = api_client(api_users["alice"])
    for export in corpus():
        preview = upload(client, export, url=PREVIEW)
        assert preview.status_code == 200, (export.name, preview.content[:300])
        body = preview.json()
        assert body["detected"]["format"] in ("csv", "xlsx", "ofx", "jsonl", "json", "mt940", "camt")
        assert all(row["valid"] for row in body["rows"]), (export.name, body["rows"])
        job_id = upload(client, export).json()["job_id"]
        drain(job_id)
        rows = stored(ProcessingJob.objects.get(id=job_id))
        assert [as_stored(row["record"]) for row in body["rows"]] == rows, export.name
    assert ProcessingJob.objects.count() == len(corpus())


def as_stored(record: dict) -> dict:
    """A previewed record with the handler's last touches (text fields trimmed and collapsed,
    the currency code upper-cased, the amount a Decimal), to compare with what was stored."""
    def text(value) -> str:
        return " ".join(str(value or "").split())

    return {"external_id": record["id"], "date": record["date"], "amount": Decimal(str(record["amount"])),
            "currency": text(record.get("currency")).upper(), "counterparty": text(record.get("counterparty")),
            "description": text(record.get("description")), "reference": text(record.get("reference")),
            "account": text(record.get("account"))}


@pytest.mark.django_db
def test_detection_is_shown_with_the_job(api_users, redis):
    client = api_client(api_users["alice"])
    job_id = upload(client, german_sparkasse()).json()["job_id"]
    job = ProcessingJob.objects.get(id=job_id)
    details = job.import_details
    assert details["encoding"] == "cp1252" and details["delimiter"] == ";" and details["header_row"] == 4
    assert details["mapping"]["amount"] == "Betrag" and details["mapping"]["date"] == "Buchungstag"
    assert details["dates"][0]["pattern"] == "DD.MM.YY"
    assert details["numbers"][0]["decimal_separator"] == ","
    page = client.get(f"/api/v1/batch-jobs/{job_id}").json()
    assert page["import_details"]["mapping"]["counterparty"] == "Auftraggeber / Empfänger"


AMBIGUOUS = b"Date,Amount,Description\n03/04/2026,10.00,rent\n04/05/2026,12.00,fees\n"


@pytest.mark.django_db
def test_ambiguous_dates_are_refused_until_a_mapping_says_which(api_users, redis):
    client = api_client(api_users["alice"])
    export = Export("ambiguous.csv", AMBIGUOUS, [])
    refused = upload(client, export)
    assert refused.status_code == 400
    assert "fits both DD/MM/YYYY and MM/DD/YYYY" in refused.json()["detail"]
    assert ProcessingJob.objects.count() == 0
    export.mapping = {"day_first": True, "default_currency": "GBP"}
    accepted = upload(client, export)
    assert accepted.status_code == 201
    job = ProcessingJob.objects.get(id=accepted.json()["job_id"])
    assert job.import_details["dates"][0] == {"column": "Date", "day_first": True, "pattern": "DD/MM/YYYY"}


@pytest.mark.django_db
def test_bad_mappings_are_refused_with_their_reason(api_users, redis):
    client = api_client(api_users["alice"])
    for mapping, message in [({"date": "Nope"}, "no column named 'Nope'"),
                             ({"colour": "Date"}, "unknown mapping key 'colour'"),
                             ({"decimal_separator": ";"}, "decimal_separator"),
                             ({"amount": "Amount", "debit": "Amount"}, "either 'amount' or 'debit'")]:
        export = Export("ambiguous.csv", AMBIGUOUS, [], mapping=mapping)
        response = upload(client, export)
        assert response.status_code == 400 and message in response.json()["detail"], (mapping, response.content)
    assert ProcessingJob.objects.count() == 0


@pytest.mark.django_db
def test_saved_mappings_by_name_for_api_and_cli(api_users, redis, tmp_path):
    from django.core.management import call_command

    client = api_client(api_users["alice"])
    saved = client.post("/api/v1/projects/alice-audit/mappings",
                        {"name": "ledger-headerless", "mapping": {"has_header": False, "date": 1, "id": 2,
                                                                  "amount": 3, "description": 4,
                                                                  "default_currency": "EUR"}}, format="json")
    assert saved.status_code == 200, saved.content
    assert [m["name"] for m in client.get("/api/v1/projects/alice-audit/mappings").json()] == ["ledger-headerless"]
    headerless = next(e for e in corpus() if e.name == "ledger.csv")
    headerless.mapping = None
    response = upload(client, headerless, mapping_name="ledger-headerless")
    assert response.status_code == 201, response.content
    assert ProcessingJob.objects.get(id=response.json()["job_id"]).import_details["mapping_name"] == \
        "ledger-headerless"
    path = tmp_path / "ledger.csv"
    path.write_bytes(headerless.content)
    call_command("submit_job", str(path), "--type", "transaction", "--project", "alice-audit", "--mapping",
                 "ledger-headerless")
    assert ProcessingJob.objects.count() == 2
    call_command("submit_job", str(path), "--type", "transaction", "--project", "alice-audit",
                 "--map", "has_header=false", "--map", "date=1", "--map", "id=2", "--map", "amount=3",
                 "--map", "default_currency=EUR", "--save-mapping", "cli-mapping")
    assert ImportMapping.objects.filter(project_id="alice-audit", name="cli-mapping").exists()
    assert client.get("/api/v1/projects/bob-audit/mappings").status_code == 404


@pytest.mark.django_db
def test_files_in_zenith_field_names_are_read_by_whole_columns(api_users, redis):
    """The fast path decides dates like mapped files do: refused when undecidable, settled by
    the job's own day_first (which the handler then does not apply a second time)."""
    import json

    from tests.conftest import drain

    client = api_client(api_users["alice"])
    export = Export("mine.csv", b"id,date,amount,currency\nM1,03/04/2026,1.00,EUR\nM2,04/05/2026,2.00,EUR\n", [])
    refused = upload(client, export)
    assert refused.status_code == 400 and "fits both DD/MM/YYYY and MM/DD/YYYY" in refused.json()["detail"]
    accepted = upload(client, export, options=json.dumps({"day_first": True}))
    assert accepted.status_code == 201, accepted.content
    job = ProcessingJob.objects.get(id=accepted.json()["job_id"])
    assert job.import_details["mode"] == "canonical" and job.import_details["from_options"] == {"day_first": True}
    drain(job.id)
    assert [row["date"] for row in stored(job)] == ["2026-04-03", "2026-05-04"]
