"""REST API contract: every endpoint and status code, bad input, permissions, admission."""

from __future__ import annotations

import gzip
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Batch, BatchPayload, ProcessingJob
from tests.conftest import api_client, drain
from tests.support.factories import transaction_records

# Transactional, so on_commit hooks run and "no queued message left behind" can fail.
pytestmark = pytest.mark.django_db(transaction=True)

SUBMIT = "/api/v1/batch-jobs/submit"


def records(n: int, **extra) -> list[dict]:
    return transaction_records(n, "R", **extra)


def submit(client, project="alice-audit", data_type="transaction", items=None, **extra):
    body = {"project_id": project, "data_type": data_type, "items": records(5) if items is None else items, **extra}
    return client.post(SUBMIT, body, format="json")


def upload(client, content: bytes, name: str, project="alice-audit", data_type="transaction", **fields):
    file = SimpleUploadedFile(name, content)
    return client.post(SUBMIT, {"project_id": project, "data_type": data_type, "file": file, **fields},
                       format="multipart")


def nothing_left_behind(redis) -> None:
    assert ProcessingJob.objects.count() == 0
    assert Batch.objects.count() == 0
    assert BatchPayload.objects.count() == 0
    assert not [k for k in redis.keys("rq:queue:*")]


# --- authentication --------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("post", SUBMIT), ("get", "/api/v1/batch-jobs/"),
    ("get", "/api/v1/batch-jobs/00000000-0000-0000-0000-000000000000"),
    ("post", "/api/v1/batch-jobs/00000000-0000-0000-0000-000000000000/cancel"),
    ("post", "/api/v1/batch-jobs/00000000-0000-0000-0000-000000000000/retry"),
    ("get", "/api/v1/batch-jobs/00000000-0000-0000-0000-000000000000/batches"),
    ("get", "/api/v1/batch-jobs/00000000-0000-0000-0000-000000000000/failures"),
    ("get", "/api/v1/projects/"), ("post", "/api/v1/projects/"), ("get", "/api/schema/"),
])
def test_anonymous_requests_get_401(method, path):
    response = getattr(api_client(), method)(path)
    assert response.status_code == 401
    assert b"Authentication credentials were not provided" in response.content


# --- submit ------------------------------------------------------------------------------

def test_submit_json_answers_201_with_the_contract(api_users, redis):
    response = submit(api_client(api_users["alice"]), items=records(1200), priority=7)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"job_id", "status", "total_items", "total_batches", "batch_size"}
    assert body["status"] == "pending"
    assert body["total_items"] == 1200
    assert body["total_batches"] == -(-1200 // body["batch_size"])
    job = ProcessingJob.objects.get(id=body["job_id"])
    assert job.submitted_by == api_users["alice"] and job.priority == 7
    assert job.correlation_id == response["X-Correlation-ID"]
    assert redis.keys("rq:queue:*")  # the first batches were sent: the negative checks can fail


@pytest.mark.parametrize("name,content", [
    ("data.csv", b"id,date,amount,currency\nA,2026-01-01,1.00,EUR\nB,2026-01-02,2.00,EUR\n"),
    ("data.json", json.dumps(records(2)).encode()),
    ("data.jsonl", b"".join(json.dumps(r).encode() + b"\n" for r in records(2))),
    ("data.csv.gz", gzip.compress(b"id,date,amount,currency\nA,2026-01-01,1.00,EUR\nB,2026-01-02,2.00,EUR\n")),
    ("export", b"\xef\xbb\xbfid;date;amount;currency\nA;2026-01-01;1.00;EUR\nB;2026-01-02;2.00;EUR\n"),
])
def test_submit_file_formats(api_users, redis, name, content):
    response = upload(api_client(api_users["alice"]), content, name)
    assert response.status_code == 201, response.content
    assert response.json()["total_items"] == 2
    job = ProcessingJob.objects.get(id=response.json()["job_id"])
    drain(job.id)
    job.refresh_from_db()
    assert (job.status, job.items_processed) == ("completed", 2)


BAD_INPUT = [
    ("empty items", dict(items=[]), 400, "No items provided"),
    ("unknown data type", dict(data_type="invoices"), 400, "Known data types: analysis, embedding, entity, probe"),
    ("unknown project", dict(project="nope"), 400, "Unknown project 'nope'"),
    ("foreign project", dict(project="bob-audit"), 400, "Unknown project 'bob-audit'"),
    ("priority out of range", dict(priority=11), 400, "priority"),
    ("priority wrong type", dict(priority="high"), 400, "priority"),
    ("items not a list", dict(items={"id": 1}), 400, "items must be a JSON array"),
    ("item not an object", dict(items=[{"id": 1}, 5]), 400, "item 1 must be a JSON object"),
    ("options not an object", dict(options=[1]), 400, "options"),
]


@pytest.mark.parametrize("case,fields,status,message", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_json_submissions(api_users, redis, case, fields, status, message):
    response = submit(api_client(api_users["alice"]), **fields)
    assert response.status_code == status, response.content
    assert message in response.json()["detail"]
    nothing_left_behind(redis)


def test_more_than_a_million_items_in_json(api_users, redis):
    client = api_client(api_users["alice"])
    body = json.dumps({"project_id": "alice-audit", "data_type": "transaction", "items": [{}] * 1_000_001})
    response = client.post(SUBMIT, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["detail"] == "Maximum 1 million items per job"
    nothing_left_behind(redis)


@pytest.mark.heavy
def test_more_than_a_million_items_in_a_file(api_users, redis):
    response = upload(api_client(api_users["alice"]), b"{}\n" * 1_000_001, "big.jsonl")
    assert response.status_code == 413
    assert response.json()["detail"] == "Maximum 1 million items per job"
    nothing_left_behind(redis)


BAD_FILES = [
    ("malformed jsonl", "x.jsonl", b'{"id": 1}\n{"id": 2\n', "line 2"),
    ("jsonl line not an object", "x.jsonl", b'{"id": 1}\n[1, 2]\n', "line 2: expected a JSON object"),
    ("malformed json array", "x.json", b'[{"id": 1},\n {"id": 2}\n {"id": 3}]', "line 3"),
    ("json not an array", "x.json", b'{"id": 1}', "expected a JSON array"),
    ("csv without date or amount", "x.csv", b"id,name\n1,2\n3,4\n", "no date or amount column was recognised"),
    ("csv duplicate header", "x.csv", b"id,id\n1,2\n", "duplicate column names"),
    ("not utf-8 json lines", "x.jsonl", b'{"id": "caf\xe9"}\n', "not UTF-8"),
    ("not utf-8 json", "x.json", b'[{"id": "caf\xe9"}]', "not UTF-8"),
    ("png named csv", "x.csv", b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG image"),
    ("xlsx named csv", "x.csv", b"PK\x03\x04" + bytes(100), "ZIP archive"),
    ("binary", "x.jsonl", b"\x00\x01\x02" * 50, "binary"),
    ("empty file", "x.csv", b"", "No items provided"),
]


@pytest.mark.parametrize("case,name,content,message", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_files(api_users, redis, case, name, content, message):
    response = upload(api_client(api_users["alice"]), content, name)
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    nothing_left_behind(redis)


def test_malformed_json_body(api_users, redis):
    client = api_client(api_users["alice"])
    response = client.post(SUBMIT, b'{"project_id": "alice-audit", "items": [', content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    response = client.post(SUBMIT, b'{"project_id": "caf\xe9"}', content_type="application/json")
    assert response.status_code == 400
    nothing_left_behind(redis)


def test_json_body_is_read_in_any_key_order_and_checked_strictly(api_users, redis):
    client = api_client(api_users["alice"])
    body = b'{"items": [{"id": "t1", "amount": "1.5"}, {"id": "t2", "amount": "-2"}],\n "data_type": "transaction",' \
           b' "project_id": "alice-audit", "priority": 7}'
    response = client.post(SUBMIT, body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert (response.json()["total_items"], ProcessingJob.objects.get().priority) == (2, 7)

    ProcessingJob.objects.all().delete()
    redis.flushdb()  # the accepted job's messages
    for body, message in [
        (b'{"project_id": "alice-audit", "project_id": "x", "items": [{}]}', "duplicate key 'project_id'"),
        (b'{"project_id": "alice-audit", "items": [{}]} trailing', "JSON parse error"),
        (b'{"project_id": "alice-audit", "items": [{"id": 1},, {}]}', "JSON parse error"),
    ]:
        response = client.post(SUBMIT, body, content_type="application/json")
        assert response.status_code == 400, body
        assert message in response.json()["detail"]
    assert not ProcessingJob.objects.exists()
    nothing_left_behind(redis)


def test_json_body_over_the_upload_limit_is_413(api_users, redis, settings):
    settings.ZENITH_MAX_UPLOAD_BYTES = 1024 * 1024
    body = json.dumps({"project_id": "alice-audit", "data_type": "transaction",
                       "items": [{"id": f"t{i}", "memo": "x" * 100} for i in range(10_000)]})
    response = api_client(api_users["alice"]).post(SUBMIT, body, content_type="application/json")
    assert response.status_code == 413
    assert "larger than 1 MB" in response.json()["detail"]
    nothing_left_behind(redis)


def test_upload_over_the_limit_is_refused_on_its_declared_length(api_users, redis, settings):
    settings.ZENITH_MAX_UPLOAD_BYTES = 1024 * 1024
    big = SimpleUploadedFile("big.csv", b"id,date,amount,currency\n" + b"t1,2024-01-02,1.00,EUR\n" * 150_000)
    response = api_client(api_users["alice"]).post(
        SUBMIT, {"project_id": "alice-audit", "data_type": "transaction", "file": big}, format="multipart")
    assert response.status_code == 413  # the serializer's own size check would answer 400
    assert "larger than 1 MB" in response.json()["detail"]
    assert not ProcessingJob.objects.exists()
    nothing_left_behind(redis)


def test_unsupported_content_type_is_415(api_users, redis):
    response = api_client(api_users["alice"]).post(SUBMIT, b"id,amount\n1,2\n", content_type="text/csv")
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]
    nothing_left_behind(redis)


def test_bad_records_are_item_failures_not_request_errors(api_users, redis):
    items = records(3)
    items[1]["amount"] = "abc"
    response = submit(api_client(api_users["alice"]), items=items)
    assert response.status_code == 201
    job_id = response.json()["job_id"]
    drain(job_id)
    failures = api_client(api_users["alice"]).get(f"/api/v1/batch-jobs/{job_id}/failures").json()
    assert failures["count"] == 1
    assert failures["results"][0] == {"item_index": 1, "item_key": "R1", "kind": "invalid",
                                      "error_code": "invalid_amount", "field": "amount",
                                      "message": "amount 'abc' is not a number", "batch_number": 1}


# --- read, list, cancel, retry -----------------------------------------------------------

def test_job_detail_fields_and_isolation(api_users, redis):
    alice, bob = api_client(api_users["alice"]), api_client(api_users["bob"])
    job_id = submit(alice).json()["job_id"]
    body = alice.get(f"/api/v1/batch-jobs/{job_id}").json()
    for field in ["id", "project_id", "data_type", "status", "priority", "progress_percent", "items_processed",
                  "items_failed", "items_skipped", "total_items", "total_batches", "batches_completed",
                  "created_at", "started_at", "completed_at", "estimated_completion_time",
                  "throughput_per_second", "error_message"]:
        assert field in body
    assert body["created_at"].endswith("Z")
    assert bob.get(f"/api/v1/batch-jobs/{job_id}").status_code == 404
    assert bob.post(f"/api/v1/batch-jobs/{job_id}/cancel").status_code == 404
    assert alice.get("/api/v1/batch-jobs/not-a-uuid").status_code == 404
    assert api_client(api_users["staff"]).get(f"/api/v1/batch-jobs/{job_id}").status_code == 200
    drain(job_id)
    body = alice.get(f"/api/v1/batch-jobs/{job_id}/").json()
    assert body["status"] == "completed" and body["progress_percent"] == 100.0
    assert body["completed_at"].endswith("Z") and body["throughput_per_second"] > 0


def test_cancel_then_409(api_users, redis):
    client = api_client(api_users["alice"])
    job_id = submit(client, items=records(2000)).json()["job_id"]
    response = client.post(f"/api/v1/batch-jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json() == {"status": "cancelled"}
    job = ProcessingJob.objects.get(id=job_id)
    assert job.completed_at is not None and job.items_skipped == 2000
    again = client.post(f"/api/v1/batch-jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["detail"] == "Job already cancelled"


def test_list_filters_and_pagination(api_users, redis):
    alice = api_client(api_users["alice"])
    ids = [submit(alice).json()["job_id"] for _ in range(3)]
    submit(alice, data_type="entity", items=[{"name": "Acme Ltd"}])
    submit(api_client(api_users["bob"]), project="bob-audit")
    listing = alice.get("/api/v1/batch-jobs/", {"limit": 2}).json()
    assert listing["count"] == 4 and len(listing["results"]) == 2 and listing["next"]
    assert [job["data_type"] for job in listing["results"]][0] == "entity"  # newest first
    filtered = alice.get("/api/v1/batch-jobs/", {"data_type": "transaction", "status": "pending"}).json()
    assert {job["id"] for job in filtered["results"]} == set(ids)
    assert alice.get("/api/v1/batch-jobs/", {"project_id": "bob-audit"}).json()["count"] == 0
    bad = alice.get("/api/v1/batch-jobs/", {"status": "done"})
    assert bad.status_code == 400 and "status" in bad.json()["detail"]
    assert api_client(api_users["staff"]).get("/api/v1/batch-jobs/").json()["count"] == 5


def test_batches_failures_csv_and_retry(api_users, redis, settings):
    client = api_client(api_users["alice"])
    items = records(40)
    items[3]["poison"] = True  # raises every time: an item failure of kind "error"
    items[4]["currency"] = "??"
    job_id = submit(client, data_type="probe", items=items).json()["job_id"]
    drain(job_id)
    batches = client.get(f"/api/v1/batch-jobs/{job_id}/batches").json()
    assert batches["count"] == 1 and batches["results"][0]["attempts"] == 4
    csv_response = client.get(f"/api/v1/batch-jobs/{job_id}/failures", {"format": "csv"})
    assert csv_response.status_code == 200 and csv_response["Content-Type"].startswith("text/csv")
    lines = b"".join(csv_response.streaming_content).decode().splitlines()
    assert lines[0] == "item_index,item_key,kind,error_code,field,message,batch_number"
    assert len(lines) == 3
    errors_only = client.get(f"/api/v1/batch-jobs/{job_id}/failures", {"kind": "error"}).json()
    assert errors_only["count"] == 1

    retried = client.post(f"/api/v1/batch-jobs/{job_id}/retry", {"scope": "errors"}, format="json")
    assert retried.status_code == 200, retried.content
    assert retried.json() == {"status": "processing", "dead_batches": 0, "rerun_batches": 1, "items": 2}
    drain(job_id)
    job = ProcessingJob.objects.get(id=job_id)
    assert (job.items_processed, job.items_failed, job.retry_count) == (38, 2, 1)
    assert client.post(f"/api/v1/batch-jobs/{job_id}/retry", {"scope": "dead"}, format="json").status_code == 409


# --- projects ----------------------------------------------------------------------------

def test_projects_membership(api_users):
    alice = api_client(api_users["alice"])
    assert [p["id"] for p in alice.get("/api/v1/projects/").json()["results"]] == ["alice-audit"]
    created = alice.post("/api/v1/projects/", {"name": "Q3 Review"}, format="json")
    # Every new id gets a random suffix, so an id never says whether it was taken already.
    assert created.status_code == 201 and created.json()["id"].startswith("q3-review-")
    assert created.json()["members"] == ["alice"] and created.json()["role"] == "owner"
    project_id = created.json()["id"]
    again = alice.post("/api/v1/projects/", {"name": "Q3 Review"}, format="json")
    assert again.status_code == 201 and again.json()["id"] not in (project_id, "q3-review")
    bob = api_client(api_users["bob"])
    assert bob.get(f"/api/v1/projects/{project_id}/").status_code == 404
    assert alice.post(f"/api/v1/projects/{project_id}/members", {"username": "bob"},
                      format="json").status_code == 200
    assert bob.get(f"/api/v1/projects/{project_id}/").status_code == 200
    assert alice.post(f"/api/v1/projects/{project_id}/members", {"username": "zed"},
                      format="json").status_code == 400


# --- admission control and throttling ----------------------------------------------------

def test_breaker_open_refuses_submissions_with_429(api_users, redis):
    from jobs.engine import breaker

    breaker.force(redis, "transaction", "open")
    response = submit(api_client(api_users["alice"]))
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "circuit breaker is open" in response.json()["detail"]
    assert submit(api_client(api_users["alice"]), data_type="entity", items=[{"name": "X"}]).status_code == 201


def test_backlog_over_limit_refuses_submissions(api_users, redis, settings):
    settings.ZENITH_ADMISSION_MAX_BACKLOG_BATCHES = 2
    client = api_client(api_users["alice"])
    assert submit(client, items=records(2000)).status_code == 201
    response = submit(client)
    assert response.status_code == 429 and "overloaded" in response.json()["detail"]
    assert response["Retry-After"] == "60"


def test_per_user_submission_throttle(api_users, redis, settings):
    from django.core.cache import cache

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"submissions": "2/min"}}
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    cache.clear()
    rates = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    client = api_client(api_users["alice"])
    try:
        assert [submit(client).status_code for _ in range(3)] == [201, 201, 429]
        assert submit(api_client(api_users["bob"]), project="bob-audit").status_code == 201
    finally:
        cache.clear()
        SimpleRateThrottle.THROTTLE_RATES = rates


# --- schema and docs ---------------------------------------------------------------------

def test_schema_and_docs_are_served_locally(api_users):
    client = api_client(api_users["alice"])
    schema = client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/v1/batch-jobs/submit" in "".join(paths)
    client.force_login(api_users["alice"])
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html and "cdn" not in html.lower() and "http://" not in html.replace("http://testserver", "")


# --- audit follow-ups: ETA, O(1) status, item backlog, line numbers ----------------------

def _run_batches(job_id, count: int) -> None:
    """Runs the job's first `count` batches in this process, as a worker would (real
    processing: the counters and started_at move through the services, not by hand)."""
    from jobs.services.execution import run_batch

    for _ in range(count):
        batch = Batch.objects.filter(job_id=job_id, status="queued").order_by("number").first()
        assert batch is not None, "no queued batch to run"
        run_batch(batch.id, worker_name="test")


def _parse_iso(text: str):
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_eta_and_throughput_from_observed_progress(api_users, redis):
    import datetime as dt

    from django.utils import timezone

    from jobs.selectors.core import job_progress

    client = api_client(api_users["alice"])
    # 10 batches of 20 items, each item ~10 ms: a batch takes a measurable ~0.2 s.
    job_id = submit(client, data_type="probe", items=records(200, sleep_ms=10), batch_size=20).json()["job_id"]

    pending = client.get(f"/api/v1/batch-jobs/{job_id}").json()
    assert (pending["status"], pending["started_at"]) == ("pending", None)
    assert (pending["estimated_completion_time"], pending["eta_seconds"], pending["throughput_per_second"]) == (
        None, None, None)  # nothing observed yet: no rate, and no division by zero

    _run_batches(job_id, 4)
    job = ProcessingJob.objects.get(id=job_id)
    assert (job.status, job.items_processed, job.completed_at) == ("processing", 80, None)

    before = timezone.now()
    body = client.get(f"/api/v1/batch-jobs/{job_id}").json()
    after = timezone.now()
    assert body["status"] == "processing" and body["progress_percent"] == 40.0
    throughput, eta_seconds = body["throughput_per_second"], body["eta_seconds"]
    # Observed: 80 items over the time since the first batch started.
    assert throughput > 0
    slowest = 80 / (after - job.started_at).total_seconds()
    fastest = 80 / (before - job.started_at).total_seconds()
    assert slowest * 0.99 - 0.01 <= throughput <= fastest * 1.01 + 0.01, (slowest, throughput, fastest)
    # The remaining 120 items at that rate, from the moment of the request.
    assert eta_seconds == pytest.approx(120 / throughput, rel=0.01, abs=0.1)
    eta = _parse_iso(body["estimated_completion_time"])
    assert eta > after
    remaining, margin = dt.timedelta(seconds=eta_seconds), dt.timedelta(seconds=0.2)
    assert before + remaining - margin <= eta <= after + remaining + margin

    # The same rule with a fixed clock, exactly: 80 items in 10 s -> 8/s -> 120 / 8 = 15 s.
    at = job.started_at + dt.timedelta(seconds=10)
    progress = job_progress(job, now=at)
    assert (progress.throughput_per_second, progress.eta_seconds) == (8.0, 15.0)
    assert progress.estimated_completion_time == at + dt.timedelta(seconds=15)

    # Started but nothing finished yet, or no time elapsed: no rate and no ETA, never an error.
    job.items_processed = 0
    assert job_progress(job, now=at).estimated_completion_time is None
    job.refresh_from_db()
    assert job_progress(job, now=job.started_at).throughput_per_second is None

    drain(job_id)
    done = client.get(f"/api/v1/batch-jobs/{job_id}").json()
    assert done["status"] == "completed"
    assert (done["estimated_completion_time"], done["eta_seconds"]) == (None, None)
    job.refresh_from_db()
    assert done["throughput_per_second"] == pytest.approx(
        200 / (job.completed_at - job.started_at).total_seconds(), rel=0.01, abs=0.01)


@pytest.mark.parametrize("token_cache_seconds,expected", [(0, 2), (30, 1)])
def test_status_endpoint_query_count_does_not_grow_with_the_job(api_users, redis, settings, token_cache_seconds,
                                                                 expected):
    """GET /api/v1/batch-jobs/{id} is O(1) in the job's size: 2 queries (the token with its
    user, the job with its project), or 1 while the token is remembered (the polling case,
    jobs.api.authentication), whether the job has 1 batch or 200, pending, half done or done."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs.api.authentication import forget_tokens

    settings.ZENITH_TOKEN_CACHE_SECONDS = token_cache_seconds
    forget_tokens()
    client = api_client(api_users["alice"])
    small = submit(client, items=records(1)).json()
    large = submit(client, items=records(200), batch_size=1).json()
    assert (small["total_batches"], large["total_batches"]) == (1, 200)

    def queries(job_id) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/api/v1/batch-jobs/{job_id}")
        assert response.status_code == 200
        return [query["sql"] for query in captured.captured_queries]

    counts = {"small": len(queries(small["job_id"])), "large": len(queries(large["job_id"]))}
    _run_batches(large["job_id"], 100)
    drain(small["job_id"])
    counts["large, half done"] = len(queries(large["job_id"]))
    counts["small, completed"] = len(queries(small["job_id"]))
    assert set(counts.values()) == {expected}, counts
    assert not any('"jobs_batch"' in sql for sql in queries(large["job_id"]))


def test_item_backlog_over_limit_refuses_submissions(api_users, redis, settings):
    settings.ZENITH_ADMISSION_MAX_BACKLOG_ITEMS = 150
    client = api_client(api_users["alice"])
    first = submit(client, items=records(150))
    assert first.status_code == 201  # 150 waiting is at the limit, not over it
    first_id = first.json()["job_id"]
    over = submit(client, items=records(1))
    assert over.status_code == 201  # admission looks at the backlog before this job: 150
    over_id = over.json()["job_id"]
    messages_before = {key: redis.lrange(key, 0, -1) for key in redis.keys("rq:queue:*")}

    response = submit(client)
    assert response.status_code == 429, response.content
    assert response["Retry-After"] == "60"
    body = response.json()
    assert body["code"] == "overloaded"
    assert body["detail"] == "Zenith is overloaded: 151 items are waiting (limit 150). Try again later."
    # Nothing of the refused submission is left behind.
    assert sorted(str(pk) for pk in ProcessingJob.objects.values_list("id", flat=True)) == sorted([first_id, over_id])
    assert Batch.objects.exclude(job_id__in=[first_id, over_id]).count() == 0
    assert BatchPayload.objects.exclude(batch__job_id__in=[first_id, over_id]).count() == 0
    assert {key: redis.lrange(key, 0, -1) for key in redis.keys("rq:queue:*")} == messages_before

    drain(first_id)  # finished work leaves the backlog: 1 item waiting now
    assert submit(client).status_code == 201


@pytest.mark.parametrize("case,name,content,line", [
    ("jsonl", "x.jsonl", b'{"id": "A"}\n{"id": "B"}\n{"id": "C", }\n{"id": "D"}\n', 3),
    ("json array", "x.json", b'[\n{"id": "A"},\n{"id": "B"},\n{"id": "C" "x"},\n{"id": "D"}\n]', 4),
    ("csv unterminated quote", "x.csv",
     b'id,date,amount,currency\nA,2026-01-01,1.00,EUR\nB,2026-01-02,"2.00,EUR\nC,2026-01-03,3.00,EUR\n', 3),
])
def test_malformed_upload_names_its_line(api_users, redis, case, name, content, line):
    response = upload(api_client(api_users["alice"]), content, name)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "malformed_input" and body["line"] == line
    assert f"line {line}:" in body["detail"]
    nothing_left_behind(redis)


@pytest.mark.parametrize("body,line", [
    (b'{"project_id": "alice-audit",\n "data_type": "transaction",\n "items": [\n{"id": 1},\n{"id": 2,,},\n'
     b'{"id": 3}\n]}', 5),
    (b'{"project_id": "alice-audit",\n "data_type": "transaction"\n "items": [{"id": 1}]}', 3),
    (b'{"project_id": "alice-audit",\n "data_type": "transaction",\n "items": [{"id": 1}]\n}\n}', 5),
])
def test_malformed_json_body_names_its_line(api_users, redis, body, line):
    response = api_client(api_users["alice"]).post(SUBMIT, body, content_type="application/json")
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert detail.startswith(f"JSON parse error - line {line}:"), detail
    nothing_left_behind(redis)


def test_status_polls_are_answered_from_a_short_lived_copy(api_users, redis, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs.selectors import status_cache

    settings.ZENITH_STATUS_CACHE_SECONDS = 30  # long enough to watch the copy within a test
    status_cache.forget_readers()
    alice, bob = api_client(api_users["alice"]), api_client(api_users["bob"])
    job_id = submit(alice, items=records(10)).json()["job_id"]
    url = f"/api/v1/batch-jobs/{job_id}"
    first = alice.get(url).json()
    ProcessingJob.objects.filter(id=job_id).update(items_processed=7)  # progress made by a worker
    with CaptureQueriesContext(connection) as queries:
        again = alice.get(url).json()
    assert again == first and again["items_processed"] == 0  # the copy, within its TTL
    assert len(queries) == 0  # neither the token, nor the membership, nor the job: no PostgreSQL
    assert bob.get(url).status_code == 404  # a copy exists, but bob may not read it

    assert alice.post(f"{url}/cancel").json() == {"status": "cancelled"}
    after = alice.get(url).json()  # the API's own write drops the copy at once
    assert (after["status"], after["items_skipped"]) == ("cancelled", 10)

    settings.ZENITH_STATUS_CACHE_SECONDS = 0
    ProcessingJob.objects.filter(id=job_id).update(items_processed=8)
    assert alice.get(url).json()["items_processed"] == 8  # off: every poll reads PostgreSQL
