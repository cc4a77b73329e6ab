"""What operators touch: breaker overrides (command, API, admin), dead letters (command,
API), the job commands, alert e-mail, and the upload page's preview and saved mappings."""

from __future__ import annotations

import io

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from jobs.engine import breaker
from jobs.models import Batch, ImportMapping, ProcessingJob, Project
from jobs.services import submit_job
from monitoring.models import Alert
from tests.conftest import api_client, drain
from tests.support.factories import transaction_records

pytestmark = pytest.mark.django_db


def records(n: int, **extra) -> list[dict]:
    return transaction_records(n, "O", date="2026-03-03", amount="9.99", currency="EUR", **extra)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def dead_job():
    items = records(30)
    items[0]["batch_fail_until_attempt"] = 99
    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="probe", records=items, batch_size=10)
    drain(job.id)
    job.refresh_from_db()
    assert job.status == "failed"
    return job


def test_breaker_command_forces_and_releases(redis, api_users):
    out = run("breaker", "open", "entity")
    assert "entity           open (forced) - forced open by an operator" in out
    assert breaker.status(redis, "entity")["state"] == "open"
    assert Alert.objects.get(key="breaker:entity").resolved_at is None
    response = api_client(api_users["alice"]).post("/api/v1/batch-jobs/submit", {
        "project_id": "alice-audit", "data_type": "entity", "items": [{"name": "Acme"}]}, format="json")
    assert response.status_code == 429
    assert "transaction      closed" in run("breaker", "auto", "entity")
    assert breaker.status(redis, "entity")["state"] == "open"  # auto: the forced state is gone, the last one stays
    run("breaker", "close", "entity")
    assert breaker.status(redis, "entity")["state"] == "closed"
    assert Alert.objects.get(key="breaker:entity").resolved_at is not None


def test_breaker_api_is_read_for_members_and_forced_by_staff(redis, api_users):
    states = api_client(api_users["alice"]).get("/api/v1/breakers/").json()
    assert {row["data_type"] for row in states} >= {"transaction", "analysis", "entity"}
    assert api_client(api_users["alice"]).post("/api/v1/breakers/transaction/force", {"state": "open"},
                                               format="json").status_code == 403
    forced = api_client(api_users["staff"]).post("/api/v1/breakers/transaction/force", {"state": "open"},
                                                 format="json")
    assert forced.status_code == 200 and forced.json()["state"] == "open" and forced.json()["forced"] == "open"
    assert api_client(api_users["staff"]).post("/api/v1/breakers/nope/force", {"state": "open"},
                                               format="json").status_code == 400


def test_breaker_admin_actions(redis, api_users):
    from django.contrib.auth import get_user_model

    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction", records=records(3))
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))
    response = client.post("/admin/jobs/processingjob/", {"action": "open_breaker", "_selected_action": [job.id]},
                           follow=True)
    assert "Circuit breaker of transaction set to open." in response.content.decode()
    assert breaker.status(redis, "transaction")["state"] == "open"
    client.post("/admin/jobs/processingjob/", {"action": "close_breaker", "_selected_action": [job.id]})
    assert breaker.status(redis, "transaction")["state"] == "closed"


def test_dead_letters_command_lists_attempts_and_requeues(redis, api_users):
    job = dead_job()
    listing = run("dead_letters", "--job", str(job.id)[:8], "--tracebacks")
    assert "4 attempts" in listing and listing.count("[error]") == 4 and "OperationalError" in listing
    assert "Traceback" in listing
    requeued = run("dead_letters", "--job", str(job.id), "--batch", "1", "--requeue")
    assert "re-queued 1 batch(es)" in requeued
    job.refresh_from_db()
    assert job.status == "processing" and job.items_failed == 0
    assert Batch.objects.get(job=job, number=1).status == "queued"  # back in the job's window


def test_dead_letters_api_and_single_requeue(redis, api_users):
    job = dead_job()
    alice, bob = api_client(api_users["alice"]), api_client(api_users["bob"])
    listing = alice.get("/api/v1/dead-letters/", {"job_id": str(job.id)}).json()
    assert listing["count"] == 1
    dead = listing["results"][0]
    assert dead["number"] == 1 and len(dead["attempts_log"]) == 4 and dead["attempts_log"][0]["traceback"]
    assert bob.get("/api/v1/dead-letters/").json()["count"] == 0
    assert bob.post(f"/api/v1/dead-letters/{dead['id']}/requeue").status_code == 404
    assert alice.post(f"/api/v1/dead-letters/{dead['id']}/requeue").json()["status"] == "queued"
    assert alice.get("/api/v1/dead-letters/").json()["count"] == 0


def test_job_commands(redis, api_users, tmp_path):
    from jobs.management.commands.submit_job import follow

    path = tmp_path / "t.csv"
    path.write_text("id,date,amount,currency\nA,2026-01-01,1.00,EUR\nB,2026-01-02,nope,EUR\n")
    out = run("submit_job", str(path), "--type", "transaction", "--project", "alice-audit", "--priority", "9")
    job = ProcessingJob.objects.get()
    assert f"job {job.id}: 2 items in 1 batches" in out and job.priority == 9
    status = run("job_status", str(job.id)[:6])
    assert '"status": "pending"' in status and '"total_items": 2' in status
    drain(job.id)

    class Command:
        stdout = type("W", (), {"write": lambda self, text: printed.append(text), "_out": io.StringIO()})()

    printed: list[str] = []
    follow(Command(), str(job.id))
    assert any("completed: 1 processed, 1 failed, 0 skipped" in line for line in printed)
    other = submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction", records=records(5))
    assert "cancelled (final)" in run("cancel_job", str(other.id))
    with pytest.raises(Exception, match="Job already cancelled"):
        run("cancel_job", str(other.id))
    with pytest.raises(Exception, match="no job with id"):
        run("job_status", "ffffffff")


def test_alert_email_sent_once_when_raised_and_once_when_resolved(settings):
    from monitoring.alerts import raise_alert, resolve_alert

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ZENITH_ALERT_EMAILS = ["oncall@example.com"]
    raise_alert("queue_depth", "warning", "Queue depth high: 12,000 batches waiting")
    raise_alert("queue_depth", "warning", "Queue depth high: 12,000 batches waiting")
    assert len(mail.outbox) == 1 and "[WARNING] Queue depth high" in mail.outbox[0].subject
    resolve_alert("queue_depth")
    resolve_alert("queue_depth")
    assert len(mail.outbox) == 2 and "[RESOLVED]" in mail.outbox[1].subject


GERMAN = ("Buchungstag;Verwendungszweck;Betrag;Währung\n03.02.26;Miete;-1.200,00;EUR\n"
          "04.02.26;Gutschrift;350,50;EUR\n").encode("cp1252")


def test_upload_page_preview_and_saved_mapping(redis, api_users):
    client = Client()
    client.force_login(api_users["alice"])
    preview = client.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction", "priority": 5,
                                         "file": SimpleUploadedFile("konto.csv", GERMAN), "action": "preview"})
    page = preview.content.decode()
    assert preview.status_code == 200 and 'id="preview"' in page
    assert "cp1252" in page and "-1200.00" in page and "2026-02-03" in page
    assert ProcessingJob.objects.count() == 0
    mapping = '{"date": "Buchungstag", "amount": "Betrag", "description": "Verwendungszweck", "decimal_separator": ","}'
    submitted = client.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction", "priority": 5,
                                           "file": SimpleUploadedFile("konto.csv", GERMAN), "mapping": mapping,
                                           "save_mapping_as": "sparkasse", "action": "submit"})
    job = ProcessingJob.objects.get()
    assert submitted.status_code == 302 and job.import_details["given_mapping"]["date"] == "Buchungstag"
    assert ImportMapping.objects.get(project_id="alice-audit", name="sparkasse").mapping["decimal_separator"] == ","
    detail = client.get(f"/jobs/{job.id}/").content.decode()
    assert "How the file was read" in detail and "Buchungstag" in detail
    bad = client.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction", "priority": 5,
                                     "file": SimpleUploadedFile("konto.csv", GERMAN), "mapping": '{"date": "Nope"}',
                                     "action": "preview"})
    assert bad.status_code == 400 and "no column named &#x27;Nope&#x27;" in bad.content.decode()
