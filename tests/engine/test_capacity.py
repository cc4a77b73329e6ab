"""A job's window follows the live workers of its queue (jobs.engine.capacity): one job alone
uses every idle worker, concurrent jobs split them, an operator's fixed window stays a cap,
and a worker whose registration expired stops counting. Workers are registered in the real
Redis the way RQ registers them, without running (their batches stay queued to be counted)."""

from __future__ import annotations

import pytest
from rq import Queue, Worker

from jobs.engine import capacity
from jobs.engine.dispatch import queue_name
from jobs.models import Batch, BatchStatus, Project
from jobs.services import submit_job
from tests.support.factories import transaction_records

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_capacity_cache(settings):
    settings.ZENITH_CAPACITY_CACHE_SECONDS = 0
    settings.ZENITH_MAX_CONCURRENT_BATCHES = 0
    capacity.forget()
    yield
    capacity.forget()


def register_workers(redis, count: int, queue: str) -> list[Worker]:
    workers = []
    for n in range(count):
        worker = Worker([Queue(queue, connection=redis)], connection=redis, name=f"capacity-test-{n}")
        worker.register_birth()
        workers.append(worker)
    return workers


def queued(job) -> int:
    return Batch.objects.filter(job=job, status=BatchStatus.QUEUED).count()


def submit(project: Project, prefix: str):
    # 40 batches of 25: far more than any window here. The probe type runs on the "default" queue.
    return submit_job(project=project, data_type="probe", records=transaction_records(1_000, prefix), priority=5,
                      batch_size=25)


def test_it_gives_one_job_every_live_worker_of_its_queue(redis, api_users, no_capacity_cache):
    register_workers(redis, 7, queue_name("default", 5))
    job = submit(Project.objects.get(id="alice-audit"), "W")
    assert not job.batch_config["fixed_window"] and job.batch_config["concurrent_batches"] < 7
    assert queued(job) == 7


def test_it_splits_the_workers_between_concurrent_jobs(redis, api_users, no_capacity_cache):
    from jobs.engine import dispatch

    register_workers(redis, 8, queue_name("default", 5))
    first = submit(Project.objects.get(id="alice-audit"), "A")
    second = submit(Project.objects.get(id="bob-audit"), "B")
    assert dispatch.window_size(first) == dispatch.window_size(second) == 4
    assert queued(second) == 4


def test_it_keeps_an_operators_fixed_window(redis, api_users, no_capacity_cache, settings):
    register_workers(redis, 7, queue_name("default", 5))
    settings.ZENITH_MAX_CONCURRENT_BATCHES = 2
    job = submit(Project.objects.get(id="alice-audit"), "F")
    assert job.batch_config["fixed_window"] and queued(job) == 2


def test_it_stops_counting_a_worker_whose_registration_expired(redis, api_users, no_capacity_cache):
    workers = register_workers(redis, 6, queue_name("default", 5))
    for worker in workers[:4]:
        redis.delete(worker.key)  # what a worker killed with -9 leaves once its key's TTL passes
    assert capacity.live_workers(queue_name("default", 5)) == 2
    job = submit(Project.objects.get(id="alice-audit"), "E")
    assert queued(job) == job.batch_config["concurrent_batches"]
