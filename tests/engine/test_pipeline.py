"""The core pipeline end to end on real workers: submit, batch, process, finalize."""

from __future__ import annotations

import time

import pytest
from django.db.models import F

from jobs.models import Batch, BatchAttempt, ItemFailure, JobStatus, Transaction
from jobs.services import submit_job
from tests.conftest import assert_accounting, wait_for_job, wait_until
from tests.support.factories import member_project, transaction_records

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def transactions(n: int, start: int = 0, **extra) -> list[dict]:
    return transaction_records(
        n, "T", start=start, digits=7, date="2026-03-01", amount=lambda i: f"{(i % 997) + 0.5:.2f}", currency="EUR",
        account=lambda i: f"ACC{i % 13}", counterparty=lambda i: f"Vendor {i % 101}",
        description=lambda i: f"payment {i}", **extra)


def batch_of(job, index: int) -> Batch:
    return Batch.objects.get(job=job, start_index__lte=index, start_index__gt=index - F("item_count"))


@pytest.fixture
def project(db):
    return member_project("audit", "Audit 2026", "alice")


def test_happy_path_20k_items_two_workers(project, start_workers):
    records = transactions(20_000)
    records[7]["amount"] = "twelve"  # bad records fail alone, with reasons
    records[8]["currency"] = "EURO"
    del records[9]["id"]
    records[10]["date"] = "2026-02-30"
    start_workers(2)

    job = submit_job(project=project, data_type="transaction", records=iter(records), priority=5)
    assert job.total_items == 20_000
    assert job.total_batches == Batch.objects.filter(job=job).count() > 2

    job = wait_for_job(job.id, timeout=120)
    assert job.status == JobStatus.COMPLETED
    assert (job.items_processed, job.items_failed, job.items_skipped) == (19_996, 4, 0)
    assert job.progress_percent == 100.0
    assert Transaction.objects.filter(project=project).count() == 19_996
    reasons = dict(ItemFailure.objects.filter(job=job).values_list("item_index", "error_code"))
    assert reasons == {7: "invalid_amount", 8: "invalid_currency", 9: "missing_id", 10: "invalid_date"}
    assert_accounting(job)
    assert job.summary["stored"] == 19_996


def test_resubmitting_the_same_records_is_idempotent(project, start_workers):
    start_workers(1)
    first = wait_for_job(submit_job(project=project, data_type="transaction", records=transactions(1000)).id)
    second = wait_for_job(submit_job(project=project, data_type="transaction", records=transactions(1000)).id)
    assert first.status == second.status == JobStatus.COMPLETED
    assert Transaction.objects.filter(project=project).count() == 1000
    assert second.items_processed == 1000
    # The same ids with the same values: already stored, counted with their reason (issue 19
    # splits this from ids stored with other values, `duplicates_across_jobs`).
    assert second.summary["already_stored"] == 1000
    assert second.summary["stored"] == 0
    assert first.input_checksum == second.input_checksum
    assert_accounting(second)


def test_item_that_raises_is_retried_until_it_succeeds(project, start_workers):
    records = transactions(300)
    records[5]["raise_until_attempt"] = 3  # a transient system error on attempts 1 and 2
    start_workers(2)
    job = submit_job(project=project, data_type="probe", records=records)
    job = wait_for_job(job.id)
    assert job.status == JobStatus.COMPLETED
    assert (job.items_processed, job.items_failed) == (300, 0)
    batch = batch_of(job, 5)
    assert batch.attempts == 3
    assert list(BatchAttempt.objects.filter(batch=batch).values_list("outcome", flat=True)) == [
        "item_errors", "item_errors"]
    assert_accounting(job)


def test_batch_that_raises_then_succeeds_on_retry(project, start_workers):
    records = transactions(250)
    records[120]["batch_fail_until_attempt"] = 2
    start_workers(2)
    job = wait_for_job(submit_job(project=project, data_type="probe", records=records).id)
    assert job.status == JobStatus.COMPLETED
    assert job.items_processed == 250
    batch = batch_of(job, 120)
    assert batch.attempts == 2
    assert BatchAttempt.objects.get(batch=batch).outcome == "error"
    assert_accounting(job)


def test_poison_batch_is_dead_lettered_and_the_rest_completes(project, start_workers):
    records = transactions(500)
    records[250]["batch_fail_until_attempt"] = 99
    start_workers(2)
    # Batches of 40: the dead batch's errors stay under the breaker's minimum volume, so its
    # retries run on their backoff instead of waiting out breaker cooldowns (the breaker has
    # tests of its own); the optimizer's size would depend on this machine's load.
    job = wait_for_job(submit_job(project=project, data_type="probe", records=records, batch_size=40).id)
    assert job.status == JobStatus.FAILED
    dead = Batch.objects.get(job=job, status="dead")
    assert dead == batch_of(job, 250)
    assert dead.attempts == 4  # the first run and 3 retries (ZENITH_MAX_RETRIES=3)
    assert BatchAttempt.objects.filter(batch=dead).count() == 4
    assert (job.items_processed, job.items_failed) == (500 - dead.item_count, dead.item_count)
    assert "dead-lettered" in job.error_message
    assert_accounting(job)


def test_poison_item_fails_alone_after_retries(project, start_workers):
    records = transactions(200)
    records[42]["poison"] = True
    start_workers(2)
    job = wait_for_job(submit_job(project=project, data_type="probe", records=records).id)
    assert job.status == JobStatus.COMPLETED
    assert (job.items_processed, job.items_failed) == (199, 1)
    failure = ItemFailure.objects.get(job=job)
    assert (failure.item_index, failure.kind) == (42, "error")
    assert "gave up after 4 attempts" in failure.message
    assert_accounting(job)


def test_cancel_mid_run(project, start_workers):
    from jobs.services import cancel_job

    records = transactions(3000, sleep_ms=5)  # 30 batches of ~0.5 s
    start_workers(2)
    job = submit_job(project=project, data_type="probe", records=records)
    wait_until(lambda: Batch.objects.filter(job=job, status="succeeded").count() >= 2, timeout=60,
               message="two batches done")
    cancel_job(job.id)
    job = wait_for_job(job.id, timeout=30)
    assert job.status == JobStatus.CANCELLED
    assert job.items_skipped > 0
    assert job.items_processed == Transaction.objects.filter(job=job).count()
    size = job.batch_config["size"]
    assert job.items_processed % size == 0  # whole batches only: a stopped batch keeps nothing
    assert_accounting(job)


def test_cancel_stops_a_running_batch_within_seconds(project, start_workers):
    from jobs.services import cancel_job

    start_workers(1)
    job = submit_job(project=project, data_type="probe", records=transactions(400, sleep_ms=50), batch_size=100)
    batch = wait_until(lambda: Batch.objects.filter(job=job, status="running").first(), timeout=30,
                       message="a running batch")  # ~5 s of work
    time.sleep(0.5)
    cancelled_at = time.monotonic()
    cancel_job(job.id)
    job = wait_for_job(job.id, timeout=30, reconcile=False)
    assert time.monotonic() - cancelled_at < 3.0  # stopped mid-batch, not after its 5 s
    batch.refresh_from_db()
    assert (batch.status, batch.processed_count, batch.skipped_count) == ("cancelled", 0, 100)
    assert (job.status, job.items_processed, job.items_skipped) == (JobStatus.CANCELLED, 0, 400)
    assert not Transaction.objects.filter(job=job).exists()  # a stopped batch keeps nothing
    assert_accounting(job)


@pytest.mark.heavy  # Redis/RQ behaviour: the same on both engines
def test_optimizer_pause_between_batches_when_enabled(project, start_workers, settings):
    settings.ZENITH_BATCH_DELAY_FACTOR = 2.0  # the original design's 100/200/500 ms, doubled to measure it clearly
    settings.ZENITH_MAX_CONCURRENT_BATCHES = 1
    start_workers(2)
    job = wait_for_job(submit_job(project=project, data_type="transaction", records=transactions(1000),
                                  batch_size=100).id)
    delay = job.batch_config["delay_between_batches_ms"] / 1000
    assert delay in (0.2, 0.4, 1.0)
    starts = list(Batch.objects.filter(job=job).order_by("number").values_list("started_at", "finished_at"))
    gaps = [(b[0] - a[1]).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= delay * 0.9, (delay, gaps)
    assert job.status == JobStatus.COMPLETED


@pytest.mark.heavy  # Redis/RQ behaviour: the same on both engines
def test_priorities_drain_high_before_low(project, start_workers):
    from tests.conftest import worker_env

    low = submit_job(project=project, data_type="probe", records=transactions(600, sleep_ms=1), priority=1,
                     batch_size=60)
    high = submit_job(project=project, data_type="probe", records=transactions(600, start=10_000, sleep_ms=1),
                      priority=9, batch_size=60)
    start_workers(1, env=worker_env(ZENITH_CHAIN_SECONDS=0))
    wait_for_job(low.id)
    high_starts = list(Batch.objects.filter(job=high).values_list("started_at", flat=True))
    low_starts = list(Batch.objects.filter(job=low).values_list("started_at", flat=True))
    assert max(high_starts) < min(low_starts)  # submitted later, finished first


@pytest.mark.heavy  # Redis/RQ behaviour: the same on both engines
def test_workers_are_recycled_after_max_jobs(project, start_workers):
    from tests.conftest import worker_env

    start_workers(1, env=worker_env(ZENITH_CHAIN_SECONDS=0), max_jobs=3)
    job = wait_for_job(submit_job(project=project, data_type="probe", records=transactions(1200),
                                  batch_size=100).id)
    names = set(Batch.objects.filter(job=job).values_list("worker_name", flat=True))
    assert job.status == JobStatus.COMPLETED
    assert len(names) >= 12 // 3  # one process, a fresh fork every three batches
    assert_accounting(job)


def test_per_job_window_caps_concurrent_batches(project, start_workers, settings):
    settings.ZENITH_MAX_CONCURRENT_BATCHES = 2
    start_workers(4)
    job = wait_for_job(submit_job(project=project, data_type="probe", records=transactions(1200, sleep_ms=2),
                                  batch_size=100).id)
    assert job.batch_config["concurrent_batches"] == 2
    spans = list(Batch.objects.filter(job=job).values_list("started_at", "finished_at"))
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans], key=lambda e: (e[0], e[1]))
    running, peak = 0, 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak <= 2
    assert len(set(Batch.objects.filter(job=job).values_list("worker_name", flat=True))) >= 2


def test_first_three_batches_of_a_new_job_go_to_the_front(project, redis, settings):
    """jobs.engine.dispatch: within a queue (priority band) the first FRONT_BATCHES (3) batches of a
    job are pushed to the front, in their own order, so a job submitted behind a big one shows
    progress at once (the original design's higher priority for the first three); later batches queue at
    the back. No workers run: the queue is read as Redis holds it."""
    from jobs.engine.dispatch import FRONT_BATCHES, get_queue, queue_name

    settings.ZENITH_MAX_CONCURRENT_BATCHES = 5  # a window of 5: two of each job's batches queue at the back
    first = submit_job(project=project, data_type="probe", records=transactions(1000), priority=5, batch_size=100)
    second = submit_job(project=project, data_type="probe", records=transactions(1000, start=5000), priority=5,
                        batch_size=100)
    assert FRONT_BATCHES == 3 and first.batch_config["concurrent_batches"] == 5
    names = {rq_id: f"{'AB'[job_id == second.id]}{number}" for rq_id, job_id, number in
             Batch.objects.filter(status="queued").values_list("rq_job_id", "job_id", "number")}
    queue = get_queue(queue_name("default", 5))

    def order() -> list[str]:
        return [names.get(rq_id, "?") for rq_id in queue.job_ids]

    assert order() == ["B1", "B2", "B3", "A1", "A2", "A3", "A4", "A5", "B4", "B5"]

    # A later batch of a job never jumps the queue: when A1 ends, A6 joins at the back.
    from jobs.services.execution import run_batch

    a1 = Batch.objects.get(job=first, number=1)
    queue.remove(a1.rq_job_id)  # as a worker takes it
    run_batch(a1.id, worker_name="test")
    names.update(dict.fromkeys(Batch.objects.filter(job=first, number=6).values_list("rq_job_id", flat=True), "A6"))
    assert order() == ["B1", "B2", "B3", "A2", "A3", "A4", "A5", "B4", "B5", "A6"]


def test_waiting_workers_take_a_new_jobs_first_batches_in_order(project, redis, settings):
    """A worker blocked on an empty queue sees the job's first batches all at once, in order.
    (Sent one message at a time, the first waiting worker took batch 3, the next batch 2, and
    batch 1 waited for the end of their chains: a job showed batch 1 queued to the last.)"""
    import threading

    from jobs.engine.dispatch import get_queue, queue_name

    settings.ZENITH_MAX_CONCURRENT_BATCHES = 4
    queue = get_queue(queue_name("default", 5))
    taken: list[str] = []

    def wait_like_a_worker() -> None:
        while len(taken) < 4:
            popped = redis.blpop([queue.key], timeout=10)
            if popped is None:
                return
            taken.append(popped[1].decode())

    consumer = threading.Thread(target=wait_like_a_worker)
    consumer.start()
    time.sleep(0.3)  # blocked in BLPOP before anything is sent
    job = submit_job(project=project, data_type="probe", records=transactions(400), priority=5, batch_size=100)
    consumer.join(15)
    numbers = dict(Batch.objects.filter(job=job).values_list("rq_job_id", "number"))
    assert [numbers.get(rq_id) for rq_id in taken] == [1, 2, 3, 4]


@pytest.mark.heavy
def test_high_priority_overtakes_a_running_low_job_with_the_default_chain(project, start_workers, settings):
    """Priorities through queue order with ZENITH_CHAIN_SECONDS at its default (5 s): a
    message may go on with its own job's batches for that long, so a high-priority job
    submitted while a low one runs waits at most the chain plus the batch in hand (README,
    "Priorities"), then overtakes every remaining low batch."""
    import os

    from django.db.models import Max, Min, Q

    from jobs.services import cancel_job
    from tests.conftest import worker_env

    chain = 5.0  # zenith/settings.py's default, which the worker gets with the variable unset
    if "ZENITH_CHAIN_SECONDS" not in os.environ:
        assert settings.ZENITH_CHAIN_SECONDS == chain
    start_workers(1, env=worker_env(ZENITH_CHAIN_SECONDS=None))
    # ~2.2 s batches: long enough that a chain decided at a batch's start, not at its end,
    # would hold the worker a whole batch longer than promised.
    low = submit_job(project=project, data_type="probe", records=transactions(1320, sleep_ms=20), priority=1,
                     batch_size=110)
    wait_until(lambda: Batch.objects.filter(job=low, status="running").exists(), timeout=30,
               interval=0.02, message="the low job running")
    high = submit_job(project=project, data_type="probe", records=transactions(300, start=50_000, sleep_ms=1),
                      priority=9, batch_size=100)
    high = wait_for_job(high.id, timeout=60, reconcile=False)
    assert high.status == JobStatus.COMPLETED

    high_span = Batch.objects.filter(job=high).aggregate(first=Min("started_at"), last=Max("finished_at"))
    waited = (high_span["first"] - high.created_at).total_seconds()
    low_batches = Batch.objects.filter(job=low)
    batch_seconds = max(b.duration_seconds for b in low_batches.filter(status="succeeded"))
    ran_before = low_batches.filter(started_at__lt=high_span["first"]).count()
    assert ran_before >= 2, "the low message should have chained batches before the high job came"
    assert waited <= chain + batch_seconds + 1.0, (waited, batch_seconds, ran_before)
    # Every high batch ran before the low job's remaining batches.
    after = low_batches.filter(Q(started_at__isnull=True) | Q(started_at__gt=high_span["last"])).count()
    assert after >= low.total_batches - ran_before - 1 and after >= 6, (after, ran_before)

    cancel_job(low.id)
    assert_accounting(wait_for_job(low.id, timeout=30))
