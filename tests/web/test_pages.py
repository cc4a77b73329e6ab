"""Monitor pages and admin actions through Django's test client, with membership rules."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from jobs.models import ProcessingJob
from jobs.services import submit_job
from monitoring.alerts import raise_alert
from tests.conftest import drain
from tests.support.factories import transaction_records

pytestmark = pytest.mark.django_db


def records(n: int, **extra) -> list[dict]:
    return transaction_records(n, "P", **extra)


@pytest.fixture
def alice_client(api_users):
    client = Client()
    client.force_login(api_users["alice"])
    return client


@pytest.fixture
def alice_job(api_users, redis):
    from jobs.models import Project

    items = records(30)
    items[2]["amount"] = "not money"
    return submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction", records=items)


@pytest.mark.parametrize("path", ["/", "/jobs/", "/jobs/new/", "/jobs/00000000-0000-0000-0000-000000000000/",
                                  "/jobs/00000000-0000-0000-0000-000000000000/progress.json", "/jobs/active.json"])
def test_pages_need_login(path):
    response = Client().get(path)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_login_page_and_sign_in(api_users):
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_dashboard_shows_active_jobs_queues_workers_breakers_and_alerts(alice_client, alice_job):
    raise_alert("cpu", "critical", "CPU usage critically high (97%)")
    page = alice_client.get("/").content.decode()
    assert str(alice_job.id)[:8] in page
    assert "ingestion-high" in page  # queue depths
    assert "No worker is running" in page
    assert "Circuit breakers and throttles" in page and "transaction" in page
    assert "CPU usage critically high (97%)" in page
    active = alice_client.get("/jobs/active.json").json()
    assert [job["id"] for job in active["jobs"]] == [str(alice_job.id)]


def test_job_list_filters_and_isolation(alice_client, alice_job, api_users):
    from jobs.models import Project

    bob_job = submit_job(project=Project.objects.get(id="bob-audit"), data_type="transaction", records=records(3))
    page = alice_client.get("/jobs/").content.decode()
    assert str(alice_job.id)[:8] in page and str(bob_job.id)[:8] not in page
    assert str(alice_job.id)[:8] not in alice_client.get("/jobs/?status=completed").content.decode()
    assert str(alice_job.id)[:8] in alice_client.get("/jobs/?status=pending&data_type=transaction").content.decode()
    assert alice_client.get(f"/jobs/{bob_job.id}/").status_code == 404
    assert alice_client.get(f"/jobs/{bob_job.id}/progress.json").status_code == 404
    assert alice_client.post(f"/jobs/{bob_job.id}/cancel/").status_code == 404


def test_job_detail_progress_card_chart_failures(alice_client, alice_job):
    page = alice_client.get(f"/jobs/{alice_job.id}/").content.decode()
    assert 'id="progress-card"' in page and 'data-finalized="false"' in page and "Cancel job" in page
    drain(alice_job.id)
    page = alice_client.get(f"/jobs/{alice_job.id}/").content.decode()
    assert 'data-finalized="true"' in page
    assert "100.0%" in page
    assert "invalid_amount" in page and "amount &#x27;not money&#x27; is not a number" in page
    assert "<svg" in page or "The chart appears" in page
    assert "Cancel job" not in page
    progress = alice_client.get(f"/jobs/{alice_job.id}/progress.json").json()
    assert progress["is_finalized"] is True and progress["items_failed"] == 1
    assert progress["batch_counts"]["succeeded"] == alice_job.total_batches


def test_cancel_and_retry_buttons(alice_client, alice_job, api_users):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(api_users["alice"])
    assert csrf_client.post(f"/jobs/{alice_job.id}/cancel/").status_code == 403
    assert alice_client.get(f"/jobs/{alice_job.id}/cancel/").status_code == 405
    response = alice_client.post(f"/jobs/{alice_job.id}/cancel/", follow=True)
    assert "Job cancelled" in response.content.decode()
    assert ProcessingJob.objects.get(id=alice_job.id).status == "cancelled"
    again = alice_client.post(f"/jobs/{alice_job.id}/cancel/", follow=True)
    assert "Job already cancelled" in again.content.decode()


def test_retry_button_reruns_failed_items(alice_client, api_users, redis):
    from jobs.models import Project

    items = records(10)
    items[4]["poison"] = True
    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="probe", records=items)
    drain(job.id)
    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    assert "Retry failed" in page
    response = alice_client.post(f"/jobs/{job.id}/retry/", {"scope": "errors"}, follow=True)
    assert "Retrying 0 dead-lettered batch(es) and 1 batch(es)" in response.content.decode()
    assert ProcessingJob.objects.get(id=job.id).retry_count == 1


def test_upload_page_success_and_errors(alice_client, redis):
    form = alice_client.get("/jobs/new/").content.decode()
    assert "alice-audit" in form and "bob-audit" not in form
    good = SimpleUploadedFile("t.csv", b"id,date,amount,currency\nA,2026-01-01,5,EUR\n")
    response = alice_client.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction",
                                                "priority": 5, "file": good})
    job = ProcessingJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.id}/"
    bad = SimpleUploadedFile("t.jsonl", b'{"id": 1}\n{broken\n')
    response = alice_client.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction",
                                                "priority": 5, "file": bad})
    assert response.status_code == 400
    assert "The file could not be read: line 2: invalid JSON" in response.content.decode()
    assert ProcessingJob.objects.count() == 1
    foreign = alice_client.post("/jobs/new/", {"project": "bob-audit", "data_type": "transaction", "priority": 5,
                                               "file": SimpleUploadedFile("t.csv", b"id\n1\n")})
    assert foreign.status_code == 400 and "Select a valid choice" in foreign.content.decode()


def test_admin_job_list_actions_and_rq_dashboard(api_users, alice_job, redis):
    from django.contrib.auth import get_user_model

    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin_user)
    listing = client.get("/admin/jobs/processingjob/").content.decode()
    assert str(alice_job.id)[:8] in listing and "progress" in listing
    assert client.get(f"/admin/jobs/processingjob/{alice_job.id}/change/").status_code == 200
    response = client.post("/admin/jobs/processingjob/", {"action": "cancel_selected",
                                                          "_selected_action": [str(alice_job.id)]}, follow=True)
    assert "Cancelled 1 job(s)." in response.content.decode()
    assert ProcessingJob.objects.get(id=alice_job.id).status == "cancelled"
    assert client.get("/admin/jobs/batch/?status__exact=dead").status_code == 200
    assert client.get("/admin/jobs/itemfailure/").status_code == 200
    index = client.get("/admin/").content.decode()
    assert "/admin/django_rq/dashboard/" in index
    assert client.get("/admin/django_rq/dashboard/").status_code == 200


def test_admin_retry_action(api_users, redis):
    from django.contrib.auth import get_user_model

    from jobs.models import Project

    items = records(10)
    items[0]["batch_fail_until_attempt"] = 99
    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="probe", records=items)
    drain(job.id)
    assert ProcessingJob.objects.get(id=job.id).status == "failed"
    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin_user)
    dead = client.get("/admin/jobs/batch/?status__exact=dead").content.decode()
    assert "dead" in dead
    response = client.post("/admin/jobs/processingjob/", {"action": "retry_failed",
                                                          "_selected_action": [str(job.id)]}, follow=True)
    assert "retrying 1 dead batch(es)" in response.content.decode()
    assert ProcessingJob.objects.get(id=job.id).status == "processing"


# --- Audit follow-ups: optional priority, live rows, action buttons, membership, denials, admin errors,
# --- and the preview that keeps the file and pre-fills the mapping.

@pytest.fixture
def staging(settings):
    """Files kept between Preview and Submit (this test's own directory, see conftest)."""
    return settings.ZENITH_STAGED_UPLOAD_DIR


def test_upload_priority_is_optional_and_defaults_to_5(alice_client, redis):
    for value in (None, ""):
        data = {"project": "alice-audit", "data_type": "transaction",
                "file": SimpleUploadedFile("t.csv", b"id,date,amount,currency\nA,2026-01-01,5,EUR\n")}
        if value is not None:
            data["priority"] = value
        response = alice_client.post("/jobs/new/", data)
        assert response.status_code == 302, response.content.decode()[:2000]
    assert list(ProcessingJob.objects.values_list("priority", flat=True)) == [5, 5]
    assert alice_client.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction", "priority": 11,
                                            "file": SimpleUploadedFile("t.csv", b"id\n1\n")}).status_code == 400


def test_active_json_returns_the_final_state_of_rows_on_the_page(alice_client, alice_job, api_users):
    from jobs.models import Project

    drain(alice_job.id)
    # The job left the unfinished set...
    assert alice_client.get("/jobs/active.json").json()["jobs"] == []
    # ...but the dashboard names its row, and gets the final state, icon included.
    bob_job = submit_job(project=Project.objects.get(id="bob-audit"), data_type="transaction", records=records(3))
    jobs = alice_client.get(f"/jobs/active.json?ids={alice_job.id},{bob_job.id},not-a-uuid").json()["jobs"]
    assert [job["id"] for job in jobs] == [str(alice_job.id)]  # bob's job is not shown, even when named
    assert jobs[0]["status"] == "completed" and jobs[0]["progress_percent"] == 100.0 and jobs[0]["is_finalized"]
    assert "&#10003;" in jobs[0]["status_html"] and "status-completed" in jobs[0]["status_html"]


def test_active_json_isolation_when_the_other_user_has_active_jobs(alice_client, alice_job, api_users):
    from jobs.models import Project

    bob_jobs = [submit_job(project=Project.objects.get(id="bob-audit"), data_type="transaction",
                           records=records(3)) for _ in range(2)]
    assert [job["id"] for job in alice_client.get("/jobs/active.json").json()["jobs"]] == [str(alice_job.id)]
    bob = Client()
    bob.force_login(api_users["bob"])
    assert {job["id"] for job in bob.get("/jobs/active.json").json()["jobs"]} == {str(j.id) for j in bob_jobs}
    assert str(alice_job.id) not in bob.get(f"/jobs/active.json?ids={alice_job.id}").content.decode()
    assert str(bob_jobs[0].id)[:8] not in alice_client.get("/").content.decode()


def test_job_page_actions_follow_the_job_state(alice_client, api_users, redis):
    from jobs.models import Project

    items = records(10)
    items[4]["poison"] = True
    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="probe", records=items)
    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    # The buttons sit in the part of the page that job.js swaps in again when the job ends.
    assert 'id="job-actions" data-can-retry="false"' in page and 'id="cancel-button"' in page
    progress = alice_client.get(f"/jobs/{job.id}/progress.json").json()
    assert (progress["can_cancel"], progress["can_retry"]) == (True, False)
    assert "status-pending" in progress["status_html"]
    drain(job.id)
    progress = alice_client.get(f"/jobs/{job.id}/progress.json").json()
    assert (progress["can_cancel"], progress["can_retry"]) == (False, True)
    assert "&#10003;" in progress["status_html"]
    page = alice_client.get(f"/jobs/{job.id}/").content.decode()
    actions = page[page.index('id="job-actions"'):page.index("Failures (CSV)")]
    assert 'data-can-retry="true"' in actions and 'id="retry-button"' in actions and "cancel-button" not in actions


def test_cancel_button_goes_as_soon_as_the_job_is_cancelled(alice_client, alice_job):
    from jobs.services import cancel_job

    cancel_job(alice_job.id)
    progress = alice_client.get(f"/jobs/{alice_job.id}/progress.json").json()
    assert progress["status"] == "cancelled" and progress["can_cancel"] is False and progress["can_retry"] is False


def test_dashboard_workers_hide_other_projects_batches(alice_client, api_users, redis):
    from rq import Worker

    from jobs.models import Batch, Project

    bob_job = submit_job(project=Project.objects.get(id="bob-audit"), data_type="transaction", records=records(3))
    alice_job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="probe", records=records(3))
    workers = []
    for name, job in (("zenith-w1", bob_job), ("zenith-w2", alice_job)):
        worker = Worker(["ingestion-high"], connection=redis, name=name)
        worker.register_birth()
        workers.append(worker)
        first = Batch.objects.filter(job=job).order_by("number").first()
        Batch.objects.filter(id=first.id).update(status="running", worker_name=name)
    try:
        page = alice_client.get("/").content.decode()
        workers_card = page[page.index("<h2>Workers</h2>"):page.index("Circuit breakers and throttles")]
        assert "zenith-w1" in workers_card and "busy (another project)" in workers_card
        assert str(bob_job.id) not in page and "of transaction" not in workers_card
        assert f"/jobs/{alice_job.id}/" in workers_card and "of probe" in workers_card
        staff = Client()
        staff.force_login(api_users["staff"])
        staff_page = staff.get("/").content.decode()
        assert f"/jobs/{bob_job.id}/" in staff_page and "busy (another project)" not in staff_page
    finally:
        for worker in workers:
            worker.register_death()


def test_retry_of_another_projects_job_is_404_and_requeues_nothing(alice_client, api_users, redis):
    from jobs.models import Batch, Project

    items = records(10)
    items[4]["poison"] = True
    bob_job = submit_job(project=Project.objects.get(id="bob-audit"), data_type="probe", records=items)
    drain(bob_job.id)
    before = list(Batch.objects.filter(job=bob_job).order_by("id").values_list("status", "attempts"))
    assert alice_client.post(f"/jobs/{bob_job.id}/retry/", {"scope": "failures"}).status_code == 404
    bob_job.refresh_from_db()
    assert bob_job.retry_count == 0 and bob_job.completed_at is not None
    assert list(Batch.objects.filter(job=bob_job).order_by("id").values_list("status", "attempts")) == before


def test_admin_refuses_non_staff(alice_client):
    response = alice_client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next=/admin/")
    response = alice_client.get("/admin/jobs/processingjob/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert Client().get("/admin/jobs/batch/").status_code == 302


def test_admin_requeue_dead_of_a_cancelled_job_shows_the_error(api_users, redis):
    from django.contrib.auth import get_user_model

    from jobs.models import Batch, Project
    from jobs.services import cancel_job

    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="probe", records=records(30),
                     batch_size=10)
    dead = Batch.objects.filter(id=Batch.objects.filter(job=job).order_by("number").first().id)
    dead.update(status="dead")  # dead-lettered while the job still ran, then the job was cancelled
    cancel_job(job.id)
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    response = client.post("/admin/jobs/batch/", {"action": "requeue_dead",
                                                  "_selected_action": [str(dead.get().id)]}, follow=True)
    assert response.status_code == 200
    errors = [str(m) for m in response.context["messages"] if m.level_tag == "error"]
    assert errors == [f"Job {str(job.id)[:8]}: Job is cancelled; submit it again instead"]
    assert dead.get().status == "dead"
    response = client.post("/admin/jobs/processingjob/", {"action": "retry_failed",
                                                          "_selected_action": [str(job.id)]}, follow=True)
    assert [m.level_tag for m in response.context["messages"]] == ["error"]


def test_preview_keeps_the_file_and_prefills_the_mapping_then_submit_uses_the_correction(
        alice_client, api_users, redis, staging):
    from jobs.models import Transaction
    from tests.support.import_corpus import german_sparkasse

    export = german_sparkasse()
    response = alice_client.post("/jobs/new/", {
        "project": "alice-audit", "data_type": "transaction", "action": "preview",
        "file": SimpleUploadedFile(export.name, export.content)})
    assert response.status_code == 200
    form = response.context["form"]
    token = form["staged"].value()
    assert token and len(list(staging.glob("*.data"))) == 1
    mapping = json.loads(form["mapping"].value())  # what was detected, ready to edit
    assert mapping["columns"]["date"] == "Buchungstag" and mapping["columns"]["amount"] == "Betrag"
    assert mapping["decimal_separator"] == "," and mapping["delimiter"] == ";" and mapping["header_row"] == 4
    page = response.content.decode()
    assert "Kept on the server" in page and "Umsaetze_Girokonto.csv" in page and "Buchungstag" in page

    # Another user cannot use the token; nothing is submitted.
    bob = Client()
    bob.force_login(api_users["bob"])
    stolen = bob.post("/jobs/new/", {"project": "bob-audit", "data_type": "transaction", "staged": token,
                                     "action": "submit"})
    assert stolen.status_code == 400 and "no longer available" in stolen.content.decode()

    # The user corrects the date column (the value date) and submits without choosing the file again.
    mapping["columns"]["date"] = "Valutadatum"
    corrected = {"project": "alice-audit", "data_type": "transaction", "staged": token,
                 "mapping": json.dumps(mapping)}
    again = alice_client.post("/jobs/new/", {**corrected, "action": "preview"})
    assert again.status_code == 200 and again.context["form"]["staged"].value() == token
    assert [row["record"]["date"] for row in again.context["preview"]["rows"]] == [
        "2026-02-03", "2026-02-06", "2026-02-14"]
    response = alice_client.post("/jobs/new/", {**corrected, "action": "submit"})
    assert response.status_code == 302, response.content.decode()[:3000]
    job = ProcessingJob.objects.get()
    assert job.input_name == "Umsaetze_Girokonto.csv" and job.priority == 5
    assert job.import_details["given_mapping"]["columns"]["date"] == "Valutadatum"
    assert list(staging.glob("*")) == []  # the kept file goes once submitted
    drain(job.id)
    rows = Transaction.objects.filter(project_id="alice-audit").order_by("date")
    assert [(str(t.date), t.amount, t.currency) for t in rows] == [
        ("2026-02-03", Decimal("-1036.47"), "EUR"), ("2026-02-06", Decimal("2500"), "EUR"),
        ("2026-02-14", Decimal("-24.14"), "EUR")]


def test_staged_upload_expires_and_is_bounded(alice_client, settings, staging, redis):
    from jobs.web import staged_uploads

    data = {"project": "alice-audit", "data_type": "transaction", "action": "preview",
            "file": SimpleUploadedFile("t.csv", b"id,date,amount,currency\nA,2026-01-01,5,EUR\n")}
    token = alice_client.post("/jobs/new/", data).context["form"]["staged"].value()
    settings.ZENITH_STAGED_UPLOAD_SECONDS = 0
    response = alice_client.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction",
                                                "staged": token, "action": "submit"})
    assert response.status_code == 400 and "no longer available" in response.content.decode()
    assert staged_uploads.sweep() == 0 and list(staging.glob("*.data")) == []  # removed when found expired
    settings.ZENITH_STAGED_UPLOAD_SECONDS = 3600
    settings.ZENITH_MAX_UPLOAD_BYTES = 1024 * 1024
    big = SimpleUploadedFile("big.csv", b"id,date,amount,currency\n" + b"A,2026-01-01,5,EUR\n" * 60_000)
    response = alice_client.post("/jobs/new/", {**data, "file": big})
    assert response.status_code == 400 and "The file is larger than 1 MB." in response.content.decode()
    assert list(staging.glob("*.data")) == [] and ProcessingJob.objects.count() == 0
    for _ in range(staged_uploads.MAX_PER_USER + 2):
        alice_client.post("/jobs/new/", {**data, "file": SimpleUploadedFile("t.csv", b"id,date,amount,currency\n"
                                                                                      b"A,2026-01-01,5,EUR\n")})
    assert len(list(staging.glob("*.data"))) == staged_uploads.MAX_PER_USER


def test_a_failed_submit_keeps_the_file_for_the_correction(alice_client, staging, redis):
    ambiguous = b"Date,Amount,Description\n03/04/2026,10.00,a\n05/06/2026,-2.50,b\n"
    response = alice_client.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction",
                                                "action": "submit", "file": SimpleUploadedFile("s.csv", ambiguous)})
    assert response.status_code == 400 and "fits both DD/MM/YYYY and MM/DD/YYYY" in response.content.decode()
    token = response.context["form"]["staged"].value()
    response = alice_client.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction",
                                                "action": "submit", "staged": token,
                                                "mapping": '{"day_first": true, "default_currency": "EUR"}'})
    assert response.status_code == 302
    job = ProcessingJob.objects.get()
    drain(job.id)
    from jobs.models import Transaction

    assert sorted(str(t.date) for t in Transaction.objects.all()) == ["2026-04-03", "2026-06-05"]


def test_prefilled_mapping_reads_every_corpus_file_as_the_preview_did(api_users):
    """What the page puts in the mapping box, submitted unchanged, reads the file the same way."""
    import io

    from jobs.models import Project
    from jobs.services.mappings import preview_upload
    from jobs.web.forms import editable_mapping
    from tests.support.import_corpus import corpus

    project = Project.objects.get(id="alice-audit")
    for export in corpus():
        options = {"mapping": export.mapping} if export.mapping else {}
        first = preview_upload(project, io.BytesIO(export.content), export.name, "transaction", options=options)
        mapping = editable_mapping(first)
        if first["detected"].get("mode") == "mapped" and first["detected"]["format"] in ("csv", "xlsx"):
            assert mapping and mapping["columns"], export.name
        second = preview_upload(project, io.BytesIO(export.content), export.name, "transaction",
                                options={"mapping": mapping} if mapping else {})
        assert [row["record"] for row in second["rows"]] == [row["record"] for row in first["rows"]], export.name
