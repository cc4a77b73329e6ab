"""Monitor pages and admin actions through Django's test client, with membership rules."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from jobs.models import ProcessingJob
from jobs.services import submit_job
from monitoring.alerts import raise_alert
from tests.conftest import drain

pytestmark = pytest.mark.django_db


def records(n: int, **extra) -> list[dict]:
    return [{"id": f"P{i}", "date": "2026-01-15", "amount": "10.50", "currency": "USD", **extra} for i in range(n)]


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
