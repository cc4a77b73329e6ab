"""Accounts and roles, tried as an attacker with a normal account would (issue 18, "What must
hold" 5): login throttling on the login page and the admin, the submission throttle shared by
processes, project roles through the API, the pages, the admin and a command, answers that do
not say what exists elsewhere, the last owner, staff without permissions, the audit log, and
two inputs that used to be 500s.

Every case is a real request through Django's test client (or a second Python process) against
the test database and a private Redis database, bounded in requests and in time."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token

from jobs.models import AuditEntry, Batch, ImportMapping, ProcessingJob, Project, ProjectMembership
from tests.conftest import ROOT, api_client, drain, worker_env
from tests.support.factories import transaction_records

pytestmark = pytest.mark.django_db

SUBMIT = "/api/v1/batch-jobs/submit"
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def records(n: int, **extra) -> list[dict]:
    return transaction_records(n, "H", **extra)


def submit(client, project="alice-audit", data_type="transaction", items=None):
    return client.post(SUBMIT, {"project_id": project, "data_type": data_type,
                                "items": records(3) if items is None else items}, format="json")


def user(username: str, **extra):
    made = get_user_model().objects.create_user(username, password="pw", **extra)
    Token.objects.create(user=made)
    return made


def browser(account) -> Client:
    client = Client()
    client.force_login(account)
    return client


@pytest.fixture
def team(api_users, redis, settings):
    """alice owns alice-audit; she adds ana as an analyst and vic as a viewer through the API."""
    settings.ZENITH_MAX_RETRIES = 0  # a failing batch is dead-lettered at once (failed_job)
    ana, vic = user("ana"), user("vic")
    alice = api_client(api_users["alice"])
    for username, role in (("ana", "analyst"), ("vic", "viewer")):
        response = alice.post("/api/v1/projects/alice-audit/members/", {"username": username, "role": role},
                              format="json")
        assert response.status_code == 200, response.content
    return {**api_users, "ana": ana, "vic": vic}


def failed_job(project_id: str = "alice-audit") -> ProcessingJob:
    """A finished job with a dead-lettered batch and a failed item: something to retry and re-queue."""
    from jobs.services import submit_job

    items = records(20)
    items[0]["batch_fail_until_attempt"] = 99  # its batch is dead-lettered
    items[15]["poison"] = True  # an item failure in the other batch
    job = submit_job(project=Project.objects.get(id=project_id), data_type="probe", records=items, batch_size=10)
    drain(job.id)
    job.refresh_from_db()
    assert job.completed_at and job.batches_failed == 1
    return job


def shape(response, *names: str) -> tuple[int, str]:
    """Status and body with the names the caller sent replaced, to compare two answers."""
    body = response.content.decode()
    for name in names:
        body = body.replace(name, "<name>")
    return response.status_code, body


# --- login throttling --------------------------------------------------------------------

def login(client: Client, username: str, password: str, path: str = LOGIN, **extra):
    return client.post(path, {"username": username, "password": password, "next": "/admin/"}, **extra)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("path", [LOGIN, ADMIN_LOGIN])
def test_wrong_passwords_lock_the_account_even_for_the_right_one(api_users, settings, path):
    """Wrong passwords used to cost nothing: the right one still signed in after any number.
    Now the failure that reaches the limit is a 429 and the right password is refused too, on
    the login page and the admin's alike, until the cool-off has passed."""
    assert settings.AXES_FAILURE_LIMIT == 5  # the documented default
    target = "carol" if path == ADMIN_LOGIN else "alice"  # the admin takes staff accounts only
    client = Client()
    started = time.monotonic()
    answers = [login(client, target, f"guess-{n}", path).status_code for n in range(100)]
    assert answers[:4] == [200] * 4 and set(answers[4:]) == {429}
    right = login(client, target, "pw", path)
    assert right.status_code == 429 and not signed_in(client)
    assert b"Too many failed sign-in attempts" in right.content
    assert time.monotonic() - started < 30
    # Locked per account: another address is refused too...
    elsewhere = Client(REMOTE_ADDR="192.0.2.77")
    assert login(elsewhere, target, "pw", path).status_code == 429 and not signed_in(elsewhere)
    # ...until the cool-off has passed (ZENITH_LOGIN_COOLOFF_MINUTES): failures are forgotten.
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(attempt_time=dt.datetime.now(dt.UTC) - settings.AXES_COOLOFF_TIME
                                 - dt.timedelta(seconds=1))
    assert login(elsewhere, target, "pw", path).status_code == 302 and signed_in(elsewhere)


def test_one_address_guessing_many_accounts_is_locked_out(api_users):
    attacker = Client(REMOTE_ADDR="203.0.113.5")
    answers = [login(attacker, f"user{n}", "guess").status_code for n in range(8)]
    assert answers[:4] == [200] * 4 and set(answers[4:]) == {429}
    # Per address: even a real account's right password is refused from there...
    assert login(attacker, "bob", "pw").status_code == 429 and not signed_in(attacker)
    # ...while bob, from his own address, signs in.
    own = Client(REMOTE_ADDR="198.51.100.20")
    assert login(own, "bob", "pw").status_code == 302 and signed_in(own)


def test_forged_forwarded_for_does_not_reset_the_count(api_users):
    """With no trusted proxy (ZENITH_TRUSTED_PROXY_COUNT=0) X-Forwarded-For is ignored: a
    client cannot get a fresh count per guess by writing a new address there."""
    client = Client(REMOTE_ADDR="203.0.113.9")
    answers = [login(client, f"user{n}", "guess", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code
               for n in range(6)]
    assert answers[4:] == [429, 429]


def test_behind_a_trusted_proxy_the_client_address_is_counted(api_users, settings):
    """Behind one proxy the proxy's address is everyone's: the client address it appended
    counts instead, and whatever a client put before it is ignored."""
    settings.ZENITH_TRUSTED_PROXY_COUNT = 1
    proxy = Client(REMOTE_ADDR="10.9.9.9")
    guesses = [login(proxy, f"user{n}", "guess", HTTP_X_FORWARDED_FOR=f"1.2.3.{n}, 203.0.113.50").status_code
               for n in range(6)]
    assert guesses[4:] == [429, 429]
    # Another client through the same proxy is not locked out by the first one's guesses.
    assert login(proxy, "bob", "pw", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 302


# --- the submission throttle, shared by processes ----------------------------------------

CHILD = """
import json, sys
import django
django.setup()
from django.conf import settings
from rest_framework.test import APIClient
client = APIClient()
client.credentials(HTTP_AUTHORIZATION="Token " + sys.argv[1])
body = {"project_id": "alice-audit", "data_type": "transaction",
        "items": [{"id": "C1", "date": "2026-01-15", "amount": "1.00", "currency": "USD"}]}
codes = [client.post("/api/v1/batch-jobs/submit", body, format="json").status_code for _ in range(2)]
print(json.dumps({"codes": codes, "cache": settings.CACHES["default"]["BACKEND"]}))
"""


@pytest.fixture
def throttle_rate(settings):
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    def set_rate(rate: str) -> None:
        rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "submissions": rate}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
        SimpleRateThrottle.THROTTLE_RATES = rates

    before = SimpleRateThrottle.THROTTLE_RATES
    cache.clear()
    yield set_rate
    cache.clear()
    SimpleRateThrottle.THROTTLE_RATES = before


@pytest.mark.django_db(transaction=True)
def test_the_submission_throttle_counts_across_processes(api_users, redis, throttle_rate):
    """Each web process used to keep its own count, so every one allowed the whole rate again.
    Now processes share one count in Redis: what this process used is refused to the other
    one, and the other's use is refused here."""
    throttle_rate("3/min")
    alice = api_client(api_users["alice"])
    assert [submit(alice).status_code for _ in range(2)] == [201, 201]
    started = time.monotonic()
    child = subprocess.run([sys.executable, "-c", CHILD, api_users["alice"].auth_token.key], cwd=ROOT,
                           env=worker_env(ZENITH_SUBMIT_THROTTLE="3/min", DJANGO_SETTINGS_MODULE="zenith.settings"),
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-3000:]
    answer = json.loads(child.stdout.strip().splitlines()[-1])
    assert answer["cache"] == "zenith.infra.cache.PrefixedRedisCache"
    assert answer["codes"] == [201, 429]  # the third of the minute, then refused
    refused = submit(alice)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert submit(api_client(api_users["bob"]), project="bob-audit").status_code == 201  # per user
    assert time.monotonic() - started < 60


def test_the_throttle_lets_requests_through_when_its_redis_does_not_answer(api_users, redis, settings,
                                                                           throttle_rate):
    """A rate limit must not take submissions down with it: with the cache's Redis refusing
    connections, submissions are accepted (and a warning logged), none throttled."""
    throttle_rate("1/min")
    working = settings.CACHES
    settings.CACHES = {"default": {**working["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    alice = api_client(api_users["alice"])
    started = time.monotonic()
    try:
        assert [submit(alice).status_code for _ in range(3)] == [201, 201, 201]
    finally:
        settings.CACHES = working
    assert time.monotonic() - started < 15


def test_two_cache_clients_share_counts_and_clearing_keeps_the_queues(redis):
    from django.core.cache import caches

    first, second = caches.create_connection("default"), caches.create_connection("default")
    first.set("throttle_submissions_42", [1.0, 2.0], 60)
    assert second.get("throttle_submissions_42") == [1.0, 2.0]
    redis.rpush("rq:queue:ingestion", "a-batch-id")
    second.clear()  # Django's own RedisCache.clear() would FLUSHDB the queues' database
    assert first.get("throttle_submissions_42") is None
    assert redis.lrange("rq:queue:ingestion", 0, -1) == [b"a-batch-id"]


# --- roles through the API ---------------------------------------------------------------

def test_viewer_reads_and_is_refused_every_change(team, redis):
    job = failed_job()
    dead = Batch.objects.get(job=job, status="dead")
    viewer = api_client(team["vic"])
    for path in ["/api/v1/projects/alice-audit/", "/api/v1/projects/alice-audit/members/",
                 "/api/v1/projects/alice-audit/mappings/", f"/api/v1/batch-jobs/{job.id}",
                 f"/api/v1/batch-jobs/{job.id}/failures", "/api/v1/batch-jobs/", "/api/v1/dead-letters/"]:
        assert viewer.get(path).status_code == 200, path
    assert viewer.get("/api/v1/projects/alice-audit/").json()["role"] == "viewer"
    refused = [
        submit(viewer),
        viewer.post(SUBMIT, {"project_id": "alice-audit", "data_type": "transaction",
                             "file": SimpleUploadedFile("t.csv", b"id,date,amount,currency\nA,2026-01-01,1,EUR\n")},
                    format="multipart"),
        viewer.post("/api/v1/batch-jobs/preview", {"project_id": "alice-audit", "data_type": "transaction",
                                                   "file": SimpleUploadedFile("t.csv", b"id\n1\n")},
                    format="multipart"),
        viewer.post(f"/api/v1/batch-jobs/{job.id}/retry", {"scope": "failures"}, format="json"),
        viewer.post(f"/api/v1/batch-jobs/{job.id}/cancel"),
        viewer.post(f"/api/v1/dead-letters/{dead.id}/requeue"),
        viewer.post("/api/v1/projects/alice-audit/mappings/", {"name": "bank", "mapping": {"date": "Day"}},
                    format="json"),
        viewer.post("/api/v1/projects/alice-audit/members/", {"username": "bob", "role": "owner"}, format="json"),
        viewer.patch("/api/v1/projects/alice-audit/members/vic/", {"role": "owner"}, format="json"),
        viewer.delete("/api/v1/projects/alice-audit/members/ana/"),
        viewer.get("/api/v1/projects/alice-audit/audit/"),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused), [r.content for r in refused]
    assert {r.json()["code"] for r in refused} == {"not_allowed"}
    assert "need the analyst role (your role is viewer)" in refused[0].json()["detail"]
    assert ProcessingJob.objects.count() == 1 and not ImportMapping.objects.exists()
    assert ProjectMembership.objects.get(user=team["vic"]).role == "viewer"
    assert Batch.objects.get(id=dead.id).status == "dead"


def test_analyst_works_but_does_not_manage_members(team, redis):
    analyst = api_client(team["ana"])
    created = submit(analyst)
    assert created.status_code == 201
    assert analyst.post(f"/api/v1/batch-jobs/{created.json()['job_id']}/cancel").status_code == 200
    job = failed_job()
    dead = Batch.objects.get(job=job, status="dead")
    assert analyst.post(f"/api/v1/dead-letters/{dead.id}/requeue").status_code == 200
    drain(job.id)
    retried = analyst.post(f"/api/v1/batch-jobs/{job.id}/retry", {"scope": "failures"}, format="json")
    assert retried.status_code == 200, retried.content
    saved = analyst.post("/api/v1/projects/alice-audit/mappings/", {"name": "bank", "mapping": {"date": "Day"}},
                         format="json")
    assert saved.status_code == 200
    for response in (analyst.post("/api/v1/projects/alice-audit/members/", {"username": "bob"}, format="json"),
                     analyst.patch("/api/v1/projects/alice-audit/members/ana/", {"role": "owner"}, format="json"),
                     analyst.delete("/api/v1/projects/alice-audit/members/vic/"),
                     analyst.get("/api/v1/projects/alice-audit/audit/")):
        assert response.status_code == 403 and "need the owner role" in response.json()["detail"]
    assert ProjectMembership.objects.get(user=team["ana"]).role == "analyst"


def test_owner_manages_members_and_the_last_owner_stays(team):
    owner = api_client(team["alice"])
    added = owner.post("/api/v1/projects/alice-audit/members/", {"username": "bob"}, format="json")
    assert added.status_code == 200 and added.json()["roles"]["bob"] == "viewer"  # least by default
    again = owner.post("/api/v1/projects/alice-audit/members/", {"username": "bob", "role": "owner"}, format="json")
    assert again.status_code == 409 and ProjectMembership.objects.get(user=team["bob"], project="alice-audit").role \
        == "viewer"
    changed = owner.patch("/api/v1/projects/alice-audit/members/bob/", {"role": "analyst"}, format="json")
    assert changed.status_code == 200 and changed.json()["roles"]["bob"] == "analyst"
    assert owner.patch("/api/v1/projects/alice-audit/members/bob/", {"role": "boss"},
                       format="json").status_code == 400
    assert owner.delete("/api/v1/projects/alice-audit/members/bob/").status_code == 204
    assert api_client(team["bob"]).get("/api/v1/projects/alice-audit/").status_code == 404  # out at once

    # The last owner can neither be removed, nor demoted, nor leave...
    for response in (owner.delete("/api/v1/projects/alice-audit/members/alice/"),
                     owner.patch("/api/v1/projects/alice-audit/members/alice/", {"role": "viewer"}, format="json")):
        assert response.status_code == 409 and "last owner" in response.json()["detail"]
    assert ProjectMembership.objects.get(user=team["alice"], project="alice-audit").role == "owner"
    # ...until there is another: then alice may step down and leave, and ana runs the project.
    assert owner.patch("/api/v1/projects/alice-audit/members/ana/", {"role": "owner"}, format="json").status_code \
        == 200
    assert owner.delete("/api/v1/projects/alice-audit/members/alice/").status_code == 204
    ana = api_client(team["ana"])
    assert ana.delete("/api/v1/projects/alice-audit/members/ana/").status_code == 409  # now she is the last
    assert ana.delete("/api/v1/projects/alice-audit/members/vic/").status_code == 204
    members = ana.get("/api/v1/projects/alice-audit/members/").json()
    assert [(m["username"], m["role"]) for m in members] == [("ana", "owner")]


def test_any_member_may_leave_but_not_remove_others(team):
    viewer = api_client(team["vic"])
    assert viewer.delete("/api/v1/projects/alice-audit/members/ana/").status_code == 403
    assert viewer.delete("/api/v1/projects/alice-audit/members/vic/").status_code == 204
    assert viewer.get("/api/v1/projects/alice-audit/").status_code == 404


# --- unknown and foreign read the same ---------------------------------------------------

def test_foreign_and_unknown_projects_jobs_and_users_answer_alike(team, redis):
    bob_job = submit(api_client(team["bob"]), project="bob-audit").json()["job_id"]
    bob_dead = Batch.objects.get(job=failed_job("bob-audit"), status="dead")
    alice = api_client(team["alice"])
    nowhere = "no-such-project"
    for template, method, body in [
        ("/api/v1/projects/{}/", "get", None),
        ("/api/v1/projects/{}/members/", "get", None),
        ("/api/v1/projects/{}/members/", "post", {"username": "alice", "role": "owner"}),
        ("/api/v1/projects/{}/members/bob/", "patch", {"role": "viewer"}),
        ("/api/v1/projects/{}/members/bob/", "delete", None),
        ("/api/v1/projects/{}/audit/", "get", None),
        ("/api/v1/projects/{}/mappings/", "get", None),
        ("/api/v1/projects/{}/mappings/", "post", {"name": "x", "mapping": {"date": "D"}}),
        ("/api/v1/projects/{}/transactions/T1/similar", "get", None),
    ]:
        foreign = getattr(alice, method)(template.format("bob-audit"), body, format="json")
        unknown = getattr(alice, method)(template.format(nowhere), body, format="json")
        assert foreign.status_code == 404, (template, method, foreign.content)
        assert shape(foreign, "bob-audit") == shape(unknown, nowhere), (template, method)
    # A project named in a body: the same 400 for both.
    for project in ("bob-audit", nowhere):
        assert submit(alice, project=project).status_code == 400
    assert shape(submit(alice, project="bob-audit"), "bob-audit") == shape(submit(alice, project=nowhere), nowhere)
    # Jobs and dead letters of another project read like ids that do not exist.
    stranger = str(uuid.uuid4())
    for template, method in [("/api/v1/batch-jobs/{}", "get"), ("/api/v1/batch-jobs/{}/cancel", "post"),
                             ("/api/v1/batch-jobs/{}/retry", "post"), ("/api/v1/batch-jobs/{}/batches", "get"),
                             ("/api/v1/batch-jobs/{}/failures", "get"), ("/api/v1/batch-jobs/{}/results", "get")]:
        foreign = getattr(alice, method)(template.format(bob_job))
        assert foreign.status_code == 404
        assert shape(foreign, bob_job) == shape(getattr(alice, method)(template.format(stranger)), stranger)
    assert shape(alice.post(f"/api/v1/dead-letters/{bob_dead.id}/requeue"), str(bob_dead.id)) == \
        shape(alice.post("/api/v1/dead-letters/999999/requeue"), "999999")
    # Pages too.
    page = browser(team["alice"])
    assert shape(page.get(f"/jobs/{bob_job}/"), bob_job) == shape(page.get(f"/jobs/{stranger}/"), stranger)
    assert page.get(f"/jobs/{bob_job}/").status_code == 404


def test_usernames_are_not_confirmed(team):
    """Removing or re-roling bob (a user, not a member here) reads like zed (no such user);
    adding an inactive account reads like adding one that does not exist."""
    user("ghost", is_active=False)
    owner = api_client(team["alice"])
    for method, body in (("patch", {"role": "viewer"}), ("delete", None)):
        bob = getattr(owner, method)("/api/v1/projects/alice-audit/members/bob/", body, format="json")
        zed = getattr(owner, method)("/api/v1/projects/alice-audit/members/zed/", body, format="json")
        assert bob.status_code == 404 and shape(bob, "bob") == shape(zed, "zed")
    ghost = owner.post("/api/v1/projects/alice-audit/members/", {"username": "ghost"}, format="json")
    zed = owner.post("/api/v1/projects/alice-audit/members/", {"username": "zed"}, format="json")
    assert ghost.status_code == 400 and shape(ghost, "ghost") == shape(zed, "zed")
    # Only owners can try at all: an analyst gets the same 403 for a real and a made-up name.
    analyst = api_client(team["ana"])
    real = analyst.post("/api/v1/projects/alice-audit/members/", {"username": "bob"}, format="json")
    made_up = analyst.post("/api/v1/projects/alice-audit/members/", {"username": "zed"}, format="json")
    assert real.status_code == 403 and shape(real) == shape(made_up)


def test_creating_a_project_does_not_say_whether_an_id_is_taken(api_users):
    alice = api_client(api_users["alice"])
    taken = alice.post("/api/v1/projects/", {"id": "bob-audit", "name": "Mine"}, format="json")
    free = alice.post("/api/v1/projects/", {"id": "fresh-audit", "name": "Mine"}, format="json")
    assert (taken.status_code, free.status_code) == (201, 201)
    assert taken.json()["id"].startswith("bob-audit-") and free.json()["id"].startswith("fresh-audit-")
    assert len(taken.json()["id"]) == len("bob-audit-") + 6 and len(free.json()["id"]) == len("fresh-audit-") + 6
    assert Project.objects.get(id="bob-audit").name == "bob's audit"  # untouched
    assert alice.post("/api/v1/projects/", {"name": "!!!"}, format="json").status_code == 400


# --- staff power is explicit -------------------------------------------------------------

def test_staff_without_the_permissions_gets_nothing_more(team, redis):
    job = failed_job()
    dave = user("dave", is_staff=True)
    staff = api_client(dave)
    assert staff.get("/api/v1/projects/").json()["count"] == 0
    assert staff.get(f"/api/v1/batch-jobs/{job.id}").status_code == 404
    assert staff.get("/api/v1/dead-letters/").json()["count"] == 0
    assert staff.post(f"/api/v1/batch-jobs/{job.id}/retry", {"scope": "dead"}, format="json").status_code == 404
    forced = staff.post("/api/v1/breakers/transaction/force", {"state": "open"}, format="json")
    assert forced.status_code == 403 and "jobs.force_breaker" in forced.json()["detail"]
    # In the admin: no model permission, no page; with view and change but not the operator
    # permission, the cancel action is not offered and posting it changes nothing.
    admin = browser(dave)
    assert admin.get("/admin/jobs/processingjob/").status_code == 403
    dave.user_permissions.add(*Permission.objects.filter(codename__in=["view_processingjob",
                                                                       "change_processingjob"]))
    admin = browser(get_user_model().objects.get(pk=dave.pk))
    listing = admin.get("/admin/jobs/processingjob/")
    assert listing.status_code == 200 and "cancel_selected" not in listing.content.decode()
    other = submit(api_client(team["alice"])).json()["job_id"]
    admin.post("/admin/jobs/processingjob/", {"action": "cancel_selected", "_selected_action": [other]})
    admin.post("/admin/jobs/processingjob/", {"action": "open_breaker", "_selected_action": [other]})
    assert ProcessingJob.objects.get(id=other).status == "pending"
    from jobs.engine import breaker

    assert breaker.status(redis, "transaction")["state"] == "closed"
    assert not AuditEntry.objects.filter(actor=dave).exists()


def test_an_operator_reads_and_operates_every_project_but_does_not_submit_or_manage(team, redis):
    job = submit(api_client(team["alice"])).json()["job_id"]
    operator = api_client(team["staff"])  # carol: staff with jobs.operate_all_projects and jobs.force_breaker
    assert operator.get(f"/api/v1/batch-jobs/{job}").status_code == 200
    assert operator.get("/api/v1/projects/alice-audit/").json()["role"] is None
    assert operator.post(f"/api/v1/batch-jobs/{job}/cancel").status_code == 200
    assert submit(operator).status_code == 403
    assert operator.post("/api/v1/projects/alice-audit/members/", {"username": "carol", "role": "owner"},
                         format="json").status_code == 403
    assert operator.post("/api/v1/breakers/transaction/force", {"state": "closed"}, format="json").status_code == 200
    entry = AuditEntry.objects.get(action="job.cancelled")
    assert (entry.actor_name, entry.project_key, entry.target) == ("carol", "alice-audit", f"job:{job}")
    breaker_entry = AuditEntry.objects.get(action="breaker.forced")
    assert breaker_entry.project is None and breaker_entry.details == {"state": "closed"}


# --- pages -------------------------------------------------------------------------------

def test_pages_follow_the_roles(team, redis):
    job = submit(api_client(team["alice"]), items=records(2000)).json()["job_id"]
    viewer = browser(team["vic"])
    page = viewer.get(f"/jobs/{job}/").content.decode()
    assert 'id="cancel-button"' not in page
    assert viewer.get(f"/jobs/{job}/progress.json").json()["can_cancel"] is False
    assert viewer.post(f"/jobs/{job}/cancel/").status_code == 403
    assert viewer.post(f"/jobs/{job}/retry/", {"scope": "failures"}).status_code == 403
    upload = viewer.get("/jobs/new/").content.decode()
    assert 'value="alice-audit"' not in upload
    refused = viewer.post("/jobs/new/", {"project": "alice-audit", "data_type": "transaction", "action": "submit",
                                         "save_mapping_as": "mine", "mapping": '{"date": "D"}',
                                         "file": SimpleUploadedFile("t.csv", b"id\n1\n")})
    assert refused.status_code == 400 and ProcessingJob.objects.count() == 1 and not ImportMapping.objects.exists()
    assert ProcessingJob.objects.get(id=job).status == "pending"

    analyst = browser(team["ana"])
    assert 'id="cancel-button"' in analyst.get(f"/jobs/{job}/").content.decode()
    assert 'value="alice-audit"' in analyst.get("/jobs/new/").content.decode()
    assert analyst.post(f"/jobs/{job}/cancel/").status_code == 302
    assert ProcessingJob.objects.get(id=job).status == "cancelled"
    assert AuditEntry.objects.get(action="job.cancelled").actor_name == "ana"


# --- the audit log -----------------------------------------------------------------------

def test_every_action_is_audited_and_only_owners_read_it(team, redis, capsys):
    owner, analyst = api_client(team["alice"]), api_client(team["ana"])
    submitted = submit(analyst).json()["job_id"]
    analyst.post(f"/api/v1/batch-jobs/{submitted}/cancel")
    job = failed_job()  # submitted by a service call with no user: "system"
    dead = Batch.objects.get(job=job, status="dead")
    analyst.post(f"/api/v1/dead-letters/{dead.id}/requeue")
    drain(job.id)
    analyst.post(f"/api/v1/batch-jobs/{job.id}/retry", {"scope": "failures"}, format="json")
    analyst.post("/api/v1/projects/alice-audit/mappings/", {"name": "bank", "mapping": {"date": "Day"}}, format="json")
    analyst.post("/api/v1/projects/alice-audit/mappings/", {"name": "bank", "mapping": {"date": "Tag"}}, format="json")
    owner.patch("/api/v1/projects/alice-audit/members/vic/", {"role": "analyst"}, format="json")
    owner.delete("/api/v1/projects/alice-audit/members/vic/")
    # A command and an admin action leave entries too.
    other = submit(owner).json()["job_id"]
    call_command("cancel_job", other, stdout=__import__("io").StringIO())
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    third = submit(owner).json()["job_id"]
    browser(root).post("/admin/jobs/processingjob/", {"action": "cancel_selected", "_selected_action": [third]})

    log = owner.get("/api/v1/projects/alice-audit/audit/", {"limit": 100})
    assert log.status_code == 200
    rows = [(e["actor"], e["action"], e["target"]) for e in reversed(log.json()["results"])]
    assert rows == [
        ("alice", "member.added", "user:ana"),
        ("alice", "member.added", "user:vic"),
        ("ana", "job.submitted", f"job:{submitted}"),
        ("ana", "job.cancelled", f"job:{submitted}"),
        ("system", "job.submitted", f"job:{job.id}"),
        ("ana", "job.requeued", f"job:{job.id}"),
        ("ana", "job.retried", f"job:{job.id}"),
        ("ana", "mapping.saved", "mapping:bank"),
        ("ana", "mapping.saved", "mapping:bank"),
        ("alice", "member.role_changed", "user:vic"),
        ("alice", "member.removed", "user:vic"),
        ("alice", "job.submitted", f"job:{other}"),
        ("system", "job.cancelled", f"job:{other}"),
        ("alice", "job.submitted", f"job:{third}"),
        ("root", "job.cancelled", f"job:{third}"),
    ]
    newest_mapping = next(e for e in log.json()["results"] if e["action"] == "mapping.saved")
    assert newest_mapping["details"]["mapping"] == {"date": "Tag"}
    assert newest_mapping["details"]["replaced"] == {"date": "Day"}  # what the overwrite lost
    assert {e["project_id"] for e in log.json()["results"]} == {"alice-audit"}
    assert all(e["at"].endswith("Z") for e in log.json()["results"])
    filtered = owner.get("/api/v1/projects/alice-audit/audit/", {"action": "member.removed"}).json()
    assert filtered["count"] == 1
    # Owners only: analysts and viewers are refused, others do not see the project at all.
    assert analyst.get("/api/v1/projects/alice-audit/audit/").status_code == 403
    assert api_client(team["bob"]).get("/api/v1/projects/alice-audit/audit/").status_code == 404
    assert not any(e["project_id"] == "bob-audit" for e in log.json()["results"])


def test_the_admin_shows_the_audit_log_read_only(team):
    owner = api_client(team["alice"])
    owner.delete("/api/v1/projects/alice-audit/members/vic/")
    entry = AuditEntry.objects.get(action="member.removed")
    root = browser(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    listing = root.get("/admin/jobs/auditentry/")
    assert listing.status_code == 200 and "member.removed" in listing.content.decode()
    detail = root.get(f"/admin/jobs/auditentry/{entry.id}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert root.get("/admin/jobs/auditentry/add/").status_code == 403
    assert root.post(f"/admin/jobs/auditentry/{entry.id}/change/", {"action": "job.cancelled"}).status_code == 403
    assert root.post(f"/admin/jobs/auditentry/{entry.id}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.get(id=entry.id).action == "member.removed"
    # Staff without the view permission do not see it.
    assert browser(user("eve", is_staff=True)).get("/admin/jobs/auditentry/").status_code == 403


def test_admin_membership_changes_go_through_the_rules_and_the_log(team):
    root = browser(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    memberships = list(ProjectMembership.objects.filter(project="alice-audit").order_by("pk"))
    form = {"name": "alice's audit", "memberships-TOTAL_FORMS": str(len(memberships) + 1),
            "memberships-INITIAL_FORMS": str(len(memberships)), "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000"}
    for index, membership in enumerate(memberships):
        row = f"memberships-{index}"
        form.update({f"{row}-id": str(membership.pk), f"{row}-project": "alice-audit",
                     f"{row}-user": str(membership.user_id), f"{row}-role": membership.role})
    new = len(memberships)
    form.update({f"memberships-{new}-project": "alice-audit", f"memberships-{new}-user": str(team["bob"].pk),
                 f"memberships-{new}-role": "viewer"})
    # Demoting the only owner is refused by the form; nothing changes.
    alice_row = next(i for i, m in enumerate(memberships) if m.user_id == team["alice"].pk)
    refused = root.post("/admin/jobs/project/alice-audit/change/", {**form, f"memberships-{alice_row}-role": "viewer"})
    assert refused.status_code == 200 and "needs at least one owner" in refused.content.decode()
    assert not ProjectMembership.objects.filter(user=team["bob"], project="alice-audit").exists()
    vic_row = next(i for i, m in enumerate(memberships) if m.user_id == team["vic"].pk)
    saved = root.post("/admin/jobs/project/alice-audit/change/", {**form, f"memberships-{vic_row}-DELETE": "on"})
    assert saved.status_code == 302, saved.content.decode()[:3000]
    assert ProjectMembership.objects.get(user=team["bob"], project="alice-audit").role == "viewer"
    assert not ProjectMembership.objects.filter(user=team["vic"], project="alice-audit").exists()
    entries = AuditEntry.objects.filter(actor_name="root").order_by("id")
    assert [(e.action, e.target, e.details) for e in entries] == [
        ("member.added", "user:bob", {"role": "viewer"}), ("member.removed", "user:vic", {"role": "viewer"})]


def test_admin_mapping_changes_are_audited(team):
    root = browser(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    bad = root.post("/admin/jobs/importmapping/add/", {"project": "alice-audit", "name": "bank", "mapping": '"x"',
                                                       "description": ""})
    assert bad.status_code == 200 and "must be a JSON object" in bad.content.decode()
    added = root.post("/admin/jobs/importmapping/add/", {"project": "alice-audit", "name": "bank",
                                                         "mapping": '{"date": "Day"}', "description": ""})
    assert added.status_code == 302, added.content.decode()[:2000]
    saved = ImportMapping.objects.get(project="alice-audit", name="bank")
    assert root.post(f"/admin/jobs/importmapping/{saved.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not ImportMapping.objects.exists()
    entries = AuditEntry.objects.filter(actor_name="root").order_by("id")
    assert [(e.action, e.target, e.details["mapping"]) for e in entries] == [
        ("mapping.saved", "mapping:bank", {"date": "Day"}), ("mapping.deleted", "mapping:bank", {"date": "Day"})]


# --- the two former 500s -----------------------------------------------------------------

def test_dead_letters_with_a_job_id_that_is_no_uuid_is_a_400(api_users):
    response = api_client(api_users["alice"]).get("/api/v1/dead-letters/", {"job_id": "notauuid"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and "job_id" in response.json()["detail"]


def test_multipart_mapping_save_with_a_null_mapping_is_a_400(api_users):
    response = api_client(api_users["alice"]).post("/api/v1/projects/alice-audit/mappings/",
                                                   {"name": "0", "mapping": "null"}, format="multipart")
    assert response.status_code == 400, response.content
    assert "mapping must be a JSON object" in response.json()["detail"]
    assert not ImportMapping.objects.exists() and not AuditEntry.objects.filter(action="mapping.saved").exists()
