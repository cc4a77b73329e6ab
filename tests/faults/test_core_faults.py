"""The core's promises under the faults named in the core issue: a worker killed mid-batch,
Redis flushed mid-job, and the cluster-wide throttle holding across worker processes."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.conf import settings
from django.db.models import Count

from jobs.models import Batch, BatchAttempt, JobStatus, Transaction
from jobs.services import submit_job
from tests.conftest import assert_accounting, wait_for_job, wait_until
from tests.engine.test_pipeline import project, transactions  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def running_batch(job):
    return Batch.objects.filter(job=job, status="running").exclude(worker_name="").first()


def test_kill_9_mid_batch_loses_nothing_and_counts_once(project, start_workers, start_scheduler):  # noqa: F811
    pool = start_workers(2)
    start_scheduler()  # its reconciler notices the lost batch: the test only waits
    records = transactions(3000, sleep_ms=4)  # batches of ~0.6 s
    job = submit_job(project=project, data_type="probe", records=records)
    batch = wait_until(lambda: running_batch(job), timeout=30, message="a running batch")
    victim = int(batch.worker_name.rsplit(".", 1)[1])
    assert victim in pool.worker_pids()
    os.kill(victim, signal.SIGKILL)

    job = wait_for_job(job.id, timeout=120, reconcile=False)
    assert job.status == JobStatus.COMPLETED
    assert (job.items_processed, job.items_failed) == (3000, 0)
    assert Transaction.objects.filter(project=project).count() == 3000
    lost = BatchAttempt.objects.get(batch=batch)
    assert lost.outcome == "lost"
    batch.refresh_from_db()
    assert batch.status == "succeeded" and batch.attempts == 2
    assert_accounting(job)


@pytest.mark.heavy  # Redis/RQ behaviour: the same on both engines
def test_redis_flushdb_mid_job_is_repaired_by_the_reconciler(project, start_workers, start_scheduler,  # noqa: F811
                                                              redis):
    start_workers(2)
    start_scheduler()
    job = submit_job(project=project, data_type="probe", records=transactions(3000, sleep_ms=3))
    wait_until(lambda: Batch.objects.filter(job=job, status="succeeded").count() >= 3, timeout=60,
               message="three batches done")
    redis.flushdb()
    job = wait_for_job(job.id, timeout=120, reconcile=False)
    assert job.status == JobStatus.COMPLETED
    assert (job.items_processed, job.items_failed, job.items_skipped) == (3000, 0, 0)
    assert Transaction.objects.filter(project=project).count() == 3000
    assert_accounting(job)


@pytest.mark.heavy  # Redis/RQ behaviour: the same on both engines
def test_retry_stranded_without_an_rq_scheduler_is_resent_by_the_reconciler(project, start_workers):  # noqa: F811
    """The host holding RQ's scheduler lock died: a delayed retry stays scheduled, overdue.
    (A standby scheduler only retries the lock every two minutes.)"""
    from rq.job import Job as RQJob

    from jobs.services import reconcile
    from zenith.infra.redis import get_redis

    records = transactions(250)
    records[120]["batch_fail_until_attempt"] = 2
    start_workers(2, scheduler=False)
    # Batches of 10: the failed run's 10 errors stay under the breaker's minimum volume. Had
    # it opened, the other batches would have been deferred with a delay, which (with no RQ
    # scheduler and no reconciler running) strands them too: not what this test is about.
    job = submit_job(project=project, data_type="probe", records=records, batch_size=10)
    batch = wait_until(lambda: Batch.objects.filter(job=job, status="retrying").first(), timeout=30,
                       message="a batch waiting for its retry")
    time.sleep(settings.ZENITH_REQUEUE_GRACE_SECONDS + 1.5)
    batch.refresh_from_db()
    assert batch.status == "retrying"
    assert RQJob.fetch(batch.rq_job_id, connection=get_redis()).get_status() == "scheduled"

    assert reconcile().resent_batches == 1
    job = wait_for_job(job.id, timeout=60, reconcile=False)
    assert (job.status, job.items_processed) == (JobStatus.COMPLETED, 250)
    batch.refresh_from_db()
    assert (batch.status, batch.attempts) == ("succeeded", 2)
    assert_accounting(job)


@pytest.mark.heavy
def test_throttle_holds_across_four_worker_processes(project, start_workers, settings):  # noqa: F811
    rate, window = 6.0, 6.0
    types = {**settings.ZENITH_DATA_TYPES,
             "limited": {"handler": "tests.support.datatypes.ProbeHandler", "queue": "default", "batch_size": 5,
                         "rate_limit": f"{rate:g}/s"}}
    settings.ZENITH_DATA_TYPES = types
    settings.ZENITH_MAX_CONCURRENT_BATCHES = 8
    from tests.conftest import worker_env

    start_workers(4, env=worker_env(ZENITH_DATA_TYPES_JSON=types))
    jobs = [submit_job(project=project, data_type="limited", records=transactions(400, start=i * 1000))
            for i in range(2)]
    # Measure a window in the middle of the run, after the first burst.
    time.sleep(2.0)
    start = Batch.objects.filter(job__in=jobs, started_at__isnull=False).order_by("-started_at").first().started_at
    time.sleep(window + 1.0)
    from datetime import timedelta

    started = Batch.objects.filter(job__in=jobs, started_at__gte=start,
                                   started_at__lt=start + timedelta(seconds=window)).count()
    burst = 1
    assert started <= rate * window + burst, started
    assert started >= 0.9 * rate * window, started
    for job in jobs:
        from jobs.services import cancel_job

        cancel_job(job.id)
    print(f"throttle: {started} batch starts in {window:g}s at a limit of {rate:g}/s "
          f"({started / window:.2f}/s, {started / (rate * window):.1%} of the limit)")
    assert Batch.objects.filter(job__in=jobs).values("worker_name").annotate(n=Count("id")).count() >= 4
