"""The small rules the pipeline stands on, each checked directly: the optimizer's table,
rate strings, backoff bounds, queue choice by priority, the GCRA and the breaker's states."""

from __future__ import annotations

import time

import pytest

from jobs import breaker, dispatch, throttle
from jobs.datatypes.registry import DataTypeSpec, parse_rate
from jobs.optimizer import calculate_batch_config, cap_concurrency
from jobs.services.execution import retry_delay
from monitoring.resources import SystemResources


def resources(cpu: float, memory_gb: float = 8.0) -> SystemResources:
    return SystemResources(cpu_percent=cpu, memory_available_gb=memory_gb, disk_io_wait=0.0)


@pytest.mark.parametrize("cpu,memory,expected", [
    (10.0, 8.0, (750, 4, 100)),  # seed: < 50 % CPU -> x1.5, 4 concurrent, 100 ms
    (65.0, 8.0, (500, 3, 200)),  # seed: otherwise x1, 3, 200 ms
    (90.0, 8.0, (250, 2, 500)),  # seed: > 80 % -> x0.5, 2, 500 ms
    (10.0, 1.5, (375, 3, 100)),  # < 2 GB free: halve again, one fewer
    (90.0, 1.0, (125, 1, 500)),
])
def test_optimizer_follows_the_seed(settings, cpu, memory, expected):
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
