"""The small rules the pipeline stands on, each checked directly: the optimizer's table,
rate strings, backoff bounds, queue choice by priority, the GCRA and the breaker's states."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from jobs.datatypes.registry import DataTypeSpec, get_data_type, parse_rate
from jobs.engine import breaker, dispatch, throttle
from jobs.engine.optimizer import calculate_batch_config, cap_concurrency
from jobs.services.execution import retry_delay
from zenith.infra.resources import SystemResources


def resources(cpu: float, memory_gb: float = 8.0) -> SystemResources:
    return SystemResources(cpu_percent=cpu, memory_available_gb=memory_gb, disk_io_wait=0.0)


@pytest.mark.parametrize("cpu,memory,expected", [
    (10.0, 8.0, (750, 4, 100)),  # x1.5 whatever the CPU; < 50 % CPU -> 4 concurrent, 100 ms
    (65.0, 8.0, (750, 3, 200)),  # otherwise 3, 200 ms
    (90.0, 8.0, (750, 2, 500)),  # > 80 % -> fewer at once, not smaller: 2, 500 ms
    (10.0, 1.5, (375, 3, 100)),  # < 2 GB free: halve the size, one fewer
    (90.0, 1.0, (375, 1, 500)),
])
def test_optimizer_shrinks_concurrency_not_batches_under_cpu_load(settings, cpu, memory, expected):
    settings.ZENITH_BATCH_DELAY_FACTOR = 1.0
    settings.ZENITH_MAX_CONCURRENT_BATCHES = 0
    config = calculate_batch_config(500, resources=resources(cpu, memory))
    assert (config.size, config.concurrent_batches, config.delay_between_batches_ms) == expected


def test_optimizer_caps_concurrency_by_batch_count_and_settings(settings):
    settings.ZENITH_BATCH_DELAY_FACTOR = 0.0
    settings.ZENITH_MAX_CONCURRENT_BATCHES = 0
    assert calculate_batch_config(500, total_items=600, resources=resources(10)).concurrent_batches == 1
    assert cap_concurrency(4, 1, 750) == 1
    assert cap_concurrency(4, 10_000, 750) == 4
    settings.ZENITH_MAX_CONCURRENT_BATCHES = 8
    config = calculate_batch_config(500, resources=resources(10))
    assert config.concurrent_batches == 8 and config.delay_between_batches_ms == 0


@pytest.mark.parametrize("text,per_second", [("10/m", 10 / 60), ("500/s", 500.0), ("100/h", 100 / 3600),
                                             ("30/5s", 6.0), ("2/day", 2 / 86400)])
def test_rate_strings(text, per_second):
    assert parse_rate(text).per_second == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["ten per minute", "10/fortnight", "0/s", "-3/m"])
def test_bad_rate_strings_are_refused(text):
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_backoff_is_exponential_jittered_and_capped(settings):
    settings.ZENITH_RETRY_BACKOFF_BASE = 2.0
    settings.ZENITH_RETRY_BACKOFF_MAX = 600.0
    for attempt, ceiling in ((1, 2), (2, 4), (3, 8), (12, 600)):
        delays = [retry_delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempt, min(delays), max(delays))
        assert max(delays) - min(delays) > ceiling / 10  # jittered, not fixed


def test_priorities_map_to_queue_bands_drained_in_order():
    assert [dispatch.queue_name("ingestion", p) for p in (10, 8, 7, 4, 3, 1)] == [
        "ingestion-high", "ingestion-high", "ingestion", "ingestion", "ingestion-low", "ingestion-low"]
    order = dispatch.worker_queue_names()
    assert order.index("default-high") < order.index("ingestion") < order.index("embedding-low")
    assert len(order) == 15


@pytest.mark.django_db
def test_gcra_spaces_slots_and_reserves_only_short_waits(redis):
    spec = DataTypeSpec(name="unit", handler_path="jobs.datatypes.base.Handler", rate_limit=parse_rate("10/s"))
    first = throttle.acquire(redis, spec, 1, max_wait=5)
    assert first.reserved and first.wait_seconds == 0
    waits = [throttle.acquire(redis, spec, 1, max_wait=5).wait_seconds for _ in range(5)]
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5], abs=0.02)
    refused = throttle.acquire(redis, spec, 1, max_wait=0.1)
    assert not refused.reserved and refused.wait_seconds == pytest.approx(0.6, abs=0.02)
    again = throttle.acquire(redis, spec, 1, max_wait=5)
    assert again.wait_seconds == pytest.approx(0.6, abs=0.02)  # the refused call reserved nothing


@pytest.mark.django_db
def test_gcra_counts_items_and_batches_together(redis):
    spec = DataTypeSpec(name="unit-items", handler_path="jobs.datatypes.base.Handler",
                        rate_limit=parse_rate("100/s"), item_rate_limit=parse_rate("1000/s"))
    throttle.acquire(redis, spec, 500, max_wait=5)
    second = throttle.acquire(redis, spec, 500, max_wait=5)
    assert second.wait_seconds == pytest.approx(0.5, abs=0.02)  # the item limit binds, not the batch one


@pytest.mark.django_db
def test_breaker_opens_probes_and_closes(redis, settings):
    settings.ZENITH_BREAKER_ERROR_RATE = 0.5
    settings.ZENITH_BREAKER_MIN_VOLUME = 20
    settings.ZENITH_BREAKER_COOLDOWN_SECONDS = 0.5
    assert breaker.record(redis, "unit", ok=5, errors=9).event == ""  # below the minimum volume
    opened = breaker.record(redis, "unit", ok=0, errors=10)
    assert opened.event == "opened" and opened.error_rate == pytest.approx(19 / 24, abs=0.01)
    denied = breaker.allow(redis, "unit", probe_lease=30)
    assert not denied.allowed and denied.state == "open" and 0 < denied.retry_after <= 0.5
    time.sleep(0.6)
    probe = breaker.allow(redis, "unit", probe_lease=30)
    assert probe.allowed and probe.probe
    assert not breaker.allow(redis, "unit", probe_lease=30).allowed  # one probe at a time
    assert breaker.record(redis, "unit", ok=0, errors=5, probe=True).event == "reopened"
    time.sleep(0.6)
    assert breaker.allow(redis, "unit", probe_lease=30).probe
    assert breaker.record(redis, "unit", ok=50, errors=0, probe=True).event == "closed"
    assert breaker.allow(redis, "unit", probe_lease=30).state == "closed"


@pytest.mark.django_db
def test_a_file_full_of_bad_rows_does_not_trip_the_breaker(redis, settings, api_users):
    """Validation rejects are the data's fault: they never count as errors for the breaker."""
    from jobs.models import Project
    from jobs.services import submit_job
    from tests.conftest import drain

    settings.ZENITH_BREAKER_MIN_VOLUME = 10
    bad = [{"id": f"B{i}", "date": "yesterday", "amount": "lots", "currency": "EURO"} for i in range(300)]
    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction", records=bad)
    drain(job.id)
    job.refresh_from_db()
    assert (job.status, job.items_failed) == ("completed", 300)
    assert breaker.status(redis, "transaction")["state"] == "closed"
    assert not redis.exists(breaker.WINDOW_KEY.format(name="transaction"))  # nothing was recorded
    assert submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction",
                      records=bad[:1]).status == "pending"  # and submissions are still admitted


@pytest.mark.django_db
def test_a_probe_the_throttle_defers_is_handed_back(redis, settings, api_users):
    """Half-open grants one probe; if the throttle sends that batch away, the next batch may
    probe at once instead of every batch of the type waiting out the probe's lease."""
    from jobs.models import Batch, Project
    from jobs.services import submit_job
    from jobs.services.execution import run_batch

    settings.ZENITH_DATA_TYPES = {**settings.ZENITH_DATA_TYPES,
                                  "slow-probe": {"handler": "jobs.datatypes.transaction.TransactionHandler",
                                                 "queue": "default", "batch_size": 5, "rate_limit": "1/m"}}
    settings.ZENITH_THROTTLE_MAX_INLINE_WAIT = 0
    settings.ZENITH_BREAKER_MIN_VOLUME = 1
    settings.ZENITH_BREAKER_COOLDOWN_SECONDS = 0.2
    records = [{"id": f"P{i}", "date": "2024-01-02", "amount": "1", "currency": "EUR"} for i in range(10)]
    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="slow-probe", records=records)
    spec = get_data_type("slow-probe")
    throttle.acquire(redis, spec, 5, max_wait=0)  # the only slot this minute is gone
    assert breaker.record(redis, "slow-probe", ok=0, errors=5).event == "opened"
    time.sleep(0.3)

    batch = Batch.objects.filter(job=job).order_by("number").first()
    assert run_batch(batch.id, worker_name="test") == "deferred:throttle"
    again = breaker.allow(redis, "slow-probe", probe_lease=300)
    assert again.allowed and again.probe


@pytest.mark.django_db
def test_a_presumed_dead_worker_that_commits_late_changes_nothing(redis, api_users):
    """The worker was only slow: its batch was declared lost and re-run elsewhere. Its late
    commit fails the claim-token check and rolls back, so nothing is written or counted twice."""
    from django.db.models import Sum

    from jobs.models import Batch, Project, Transaction
    from jobs.services import reconcile, submit_job
    from jobs.services.execution import BatchRun, LeaseLost, _claim, _execute, run_batch

    records = [{"id": f"L{i}", "date": "2024-01-02", "amount": "1", "currency": "EUR"} for i in range(10)]
    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction", records=records)
    batch = Batch.objects.select_related("job", "payload").get(job=job)
    slow_token = _claim(batch, job, "slow-worker")
    Batch.objects.filter(id=batch.id).update(heartbeat_at=batch.started_at - dt.timedelta(minutes=10))
    assert reconcile().lost_batches == 1
    assert run_batch(batch.id, worker_name="second-worker") == "succeeded"

    with pytest.raises(LeaseLost, match="at commit"):  # the guard on the commit itself
        _execute(BatchRun(batch, job, get_data_type("transaction"), slow_token, "slow-worker"))
    job.refresh_from_db()
    assert (job.items_processed, job.items_failed) == (10, 0)
    assert Transaction.objects.filter(job=job).count() == 10
    assert Batch.objects.filter(job=job).aggregate(n=Sum("processed_count"))["n"] == 10


@pytest.mark.django_db
def test_hand_written_batch_statements_read_and_write_what_the_orm_does(redis, api_users):
    """jobs.sql builds its SQL from the models: the load must give the same
    values as the ORM (JSON, UUIDs, datetimes and all), and the claim and end of a run must
    be compare-and-sets."""
    import uuid

    from jobs import sql
    from jobs.models import Batch, BatchStatus, ProcessingJob, Project
    from jobs.services import submit_job

    records = [{"id": f"S{i}", "date": "2024-01-02", "amount": "1", "currency": "EUR"} for i in range(3)]
    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction", records=records,
                     options={"day_first": True, "nested": {"a": [1, 2]}})
    ProcessingJob.objects.filter(id=job.id).update(cancel_requested_at=dt.datetime(2024, 5, 6, 7, 8, 9, 123456,
                                                                                    tzinfo=dt.UTC))
    Batch.objects.filter(job=job).update(stats={"stored": 3, "sample": ["x"]}, claim_token=uuid.uuid4())
    orm = Batch.objects.select_related("job", "payload").get(job=job)
    loaded = sql.load_batch(orm.id)

    def values(instance, skip=()):
        return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields if f.name not in skip}

    assert values(loaded) == values(orm)
    assert values(loaded.job, skip=("summary", "import_details")) == values(orm.job, skip=("summary", "import_details"))
    assert loaded.job.options == {"day_first": True, "nested": {"a": [1, 2]}}
    assert (loaded.payload.codec, bytes(loaded.payload.data)) == (orm.payload.codec, bytes(orm.payload.data))
    assert sql.load_batch(orm.id + 10_000) is None

    Batch.objects.filter(id=orm.id).update(claim_token=None)
    token = uuid.uuid4()
    assert sql.claim(loaded, token, "w1")
    assert not sql.claim(loaded, uuid.uuid4(), "w2")  # no longer queued
    claimed = Batch.objects.get(id=orm.id)
    assert (claimed.status, claimed.claim_token, claimed.attempts, claimed.worker_name) == ("running", token, 1, "w1")
    assert claimed.started_at is not None and claimed.heartbeat_at == claimed.started_at

    end = dict(status=BatchStatus.SUCCEEDED, processed_count=3, failed_count=0, stats={"stored": 3},
               last_error="", rq_job_id=claimed.rq_job_id, rerun_scope="", next_attempt_at=None)
    assert not sql.end_run(orm.id, uuid.uuid4(), **end)  # someone else's token
    assert sql.end_run(orm.id, token, **end)
    ended = Batch.objects.get(id=orm.id)
    assert (ended.status, ended.processed_count, ended.stats) == ("succeeded", 3, {"stored": 3})
    assert ended.claim_token is None
    assert ended.finished_at >= ended.started_at


# --- importing: values, headers, header rows, duplicates, ids, names ---------------------------------


def test_a_stop_request_survives_code_that_swallows_its_exception(redis):
    """RQ raises StopRequested from the SIGTERM handler of an idle worker, wherever the worker
    is; a broad `except Exception` there must not make it forget the stop (the flag is what
    RQ's loop checks before it waits for the next message)."""
    import signal

    from rq.worker import WorkerStatus

    from jobs.engine.dispatch import get_queue
    from jobs.engine.worker import SHUTDOWN, ZenithWorker

    worker = ZenithWorker([get_queue("default")], connection=redis, name="stop-test")
    worker.set_state(WorkerStatus.IDLE)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        try:
            worker.request_stop(signal.SIGTERM, None)
        except Exception:  # what the interrupted code's handler does
            pass
        assert worker._stop_requested and SHUTDOWN.is_set()
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
        SHUTDOWN.clear()
