"""Submitting a dataset: validate the request, split the records into batches, store each
batch's items once (the claim check), and open the job's window of queued batches.

Records are consumed as a stream: memory holds the batch being filled plus a few encoded
batches waiting to be written, never the whole input. Everything is written in one
transaction, so a submission rejected half-way (malformed line 800,000, too many items)
leaves no job, batch or queued message behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import IO, Any

from django.conf import settings
from django.db import transaction

from jobs import sql
from jobs.datatypes.registry import DataTypeSpec, get_data_type
from jobs.engine import breaker, dispatch, optimizer, payloads
from jobs.errors import AdmissionRefused, NoItems, SubmissionError, TooManyItems
from jobs.importing.blocks import CsvRun, batched
from jobs.models import PRIORITIES, Batch, ProcessingJob, Project
from jobs.selectors.core import backlog_totals
from jobs.services import audit
from zenith.infra.events import log_event
from zenith.infra.logging import get_correlation_id
from zenith.infra.redis import get_redis

logger = logging.getLogger(__name__)

FLUSH_EVERY_BATCHES = 20
ANALYZE_FROM_BATCHES = 64  # a submission of this many batches refreshes the batch table's statistics
MAX_BATCH_SIZE = 10_000
MAX_OPTIONS_BYTES = 64 * 1024


def validate_priority(priority: Any) -> int:
    """The one check of a job's priority; None means ZENITH_DEFAULT_PRIORITY."""
    if priority is None:
        return settings.ZENITH_DEFAULT_PRIORITY
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITIES:
        raise SubmissionError(f"priority must be a whole number from {PRIORITIES[0]} to {PRIORITIES[-1]}, "
                              f"got {priority!r}")
    return priority


def validate_options(options: Any) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise SubmissionError("options must be a JSON object")
    if len(json.dumps(options, default=str)) > MAX_OPTIONS_BYTES:
        raise SubmissionError(f"options must be smaller than {MAX_OPTIONS_BYTES // 1024} KB")
    return options


def _check_records_source(options: dict) -> None:
    """Records given with `options.source = "project"` contradict each other: refused."""
    from jobs.datatypes import stored_source

    try:
        source = stored_source.source_of(options)
    except ValueError as exc:
        raise SubmissionError(str(exc)) from None
    if source == stored_source.PROJECT:
        raise SubmissionError("options.source=project reads the project's stored transactions: submit it without "
                              "items or a file (API: no `items`; CLI: submit_job --source project without PATH).")


def check_admission(spec: DataTypeSpec) -> None:
    """Refuses new work while the data type's breaker is open or the backlog is critical."""
    try:
        state = breaker.status(get_redis(), spec.name)
    except Exception:
        state = {"state": breaker.CLOSED}
    if state["state"] == breaker.OPEN:
        retry_after = settings.ZENITH_BREAKER_COOLDOWN_SECONDS
        if state.get("reopens_at"):
            import time

            retry_after = max(1.0, state["reopens_at"] - time.time())
        raise AdmissionRefused(
            f"Processing of '{spec.name}' is paused: its circuit breaker is open ({state['reason']}). "
            "Try again later.",
            retry_after=int(retry_after) + 1,
        )
    backlog = backlog_totals()
    if backlog["batches"] > settings.ZENITH_ADMISSION_MAX_BACKLOG_BATCHES:
        raise AdmissionRefused(
            f"Zenith is overloaded: {backlog['batches']:,} batches are waiting "
            f"(limit {settings.ZENITH_ADMISSION_MAX_BACKLOG_BATCHES:,}). Try again later.",
            retry_after=60,
        )
    item_limit = settings.ZENITH_ADMISSION_MAX_BACKLOG_ITEMS
    if item_limit and backlog["items"] > item_limit:
        raise AdmissionRefused(
            f"Zenith is overloaded: {backlog['items']:,} items are waiting (limit {item_limit:,}). "
            "Try again later.",
            retry_after=60,
        )


def admitted_batch_config(spec, batch_size: int | None) -> optimizer.BatchConfig:
    """Checks `batch_size` and admission, then the optimizer's config for this submission
    (`batch_size` overriding its size when a caller knows its data best)."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or not 1 <= batch_size <= MAX_BATCH_SIZE):
        raise SubmissionError(f"batch_size must be a whole number from 1 to {MAX_BATCH_SIZE}, got {batch_size!r}")
    check_admission(spec)
    config = optimizer.calculate_batch_config(spec.batch_size)
    if batch_size is not None:
        config = dataclasses.replace(config, size=batch_size)
    return config


def submit_job(
    *,
    project: Project,
    data_type: str,
    records: Iterable[Any],
    priority: int | None = None,
    options: dict | None = None,
    submitted_by: Any = None,
    input_name: str = "",
    input_format: str = "",
    correlation_id: str = "",
    batch_size: int | None = None,
    import_details: dict | None = None,
    keys: list[str] | None = None,
    chunks: Callable[[int], Iterable[list | CsvRun]] | None = None,
    input_checksum: str = "",
) -> ProcessingJob:
    """Stores the records as batches and opens the job's window. `batch_size` overrides the
    optimizer's choice (1 to MAX_BATCH_SIZE) when a caller knows its data best. With `keys`,
    records are rows of one table in `keys` order (jobs.importing's canonical tables), stored
    as rows (jobs.engine.payloads). `chunks(size)`, when given, yields the records already cut into
    batches (jobs.importing.blocks) and is read instead of `records`. `input_checksum` is the
    submitted file's SHA-256; without it, the checksum is taken over the records' JSON."""
    spec = get_data_type(data_type)
    priority = validate_priority(priority)
    options = validate_options(options)
    _check_records_source(options)
    if getattr(project, "base_currency", "") and "base_currency" not in options:
        # The job records the base currency in force when it was submitted (issue 19).
        options = {**options, "base_currency": project.base_currency}
    config = admitted_batch_config(spec, batch_size)
    limit = settings.ZENITH_MAX_ITEMS_PER_JOB
    # Over the records' JSON only when the caller has no checksum of the file itself.
    records_checksum = None if input_checksum else hashlib.sha256()

    with transaction.atomic():
        job = ProcessingJob.objects.create(
            project=project, data_type=spec.name, priority=priority, options=options,
            submitted_by=submitted_by if getattr(submitted_by, "pk", None) else None,
            input_name=input_name[:255], input_format=input_format,
            correlation_id=correlation_id or get_correlation_id(), batch_config=config.as_dict(),
            import_details=import_details or {},
        )
        total, number = 0, 0
        pending: list[tuple[Batch, str, bytes]] = []
        if keys is not None and records_checksum is not None:
            records_checksum.update(payloads.serialize(keys))
        for chunk in chunks(config.size) if chunks is not None else batched(records, config.size):
            count = chunk.count if isinstance(chunk, CsvRun) else len(chunk)
            total += count
            if total > limit:
                raise TooManyItems(limit)
            number += 1
            if isinstance(chunk, CsvRun):
                codec, data = payloads.pack_csv(chunk.lines, chunk.meta)
            else:
                raw = payloads.serialize(chunk)
                if records_checksum is not None:
                    # Over the records only, not the chunking: "[a,b][c]" hashes like "[a,b,c]".
                    records_checksum.update(b"," if number > 1 else b"[")
                    records_checksum.update(raw[1:-1])
                codec, data = payloads.pack(raw, keys)
            pending.append((Batch(job=job, number=number, start_index=total - count, item_count=count), codec, data))
            if len(pending) >= FLUSH_EVERY_BATCHES:
                flush_batches(pending)
        flush_batches(pending)
        if total == 0:
            raise NoItems()

        job.total_items = total
        job.total_batches = number
        if records_checksum is not None:
            records_checksum.update(b"]")
        job.input_checksum = input_checksum or records_checksum.hexdigest()
        job.batch_config = {
            **config.as_dict(),
            "concurrent_batches": optimizer.cap_concurrency(config.concurrent_batches, total, config.size),
        }
        job.save(update_fields=["total_items", "total_batches", "input_checksum", "batch_config"])
        if number >= ANALYZE_FROM_BATCHES:
            # A bulk load of batches: without statistics that know them, the window's pick at
            # every commit read all of the job's pending batches (tests/services/test_window_query_plan.py).
            # ANALYZE counts this transaction's own rows.
            sql.analyze([Batch])
        dispatch.fill_window(job, pace=False)
        audit.record_submission(job, submitted_by)

    log_event("job.submitted", job, data_type=spec.name, items=total, batches=number, batch_size=config.size,
              priority=priority, project_id=project.pk)
    return job


def submit_file(*, project: Project, data_type: str, raw: IO[bytes], name: str = "", fmt: str | None = None,
                **kwargs: Any) -> ProcessingJob:
    """Submits a file as people have it (CSV/TSV in any common encoding, JSON, JSON lines,
    Excel, OFX; optionally gzip), read as a stream through jobs.importing with the mapping
    that options["mapping"] or options["mapping_name"] asks for."""
    from jobs import importing
    from jobs.services.mappings import resolve_mapping

    get_data_type(data_type)  # an unknown type is refused before the file is read
    options = dict(kwargs.pop("options", None) or {})
    mapping = resolve_mapping(project, options)
    checksum = file_checksum(raw)  # first: the import's readers share the file's position
    if getattr(project, "base_currency", ""):
        options.setdefault("base_currency", project.base_currency)
    imported = importing.open_import(raw, name=name, fmt=fmt, mapping=mapping, options=options,
                                     expects_transactions=importing.expects_transactions(data_type))
    details = {**imported.detected, **({"given_mapping": mapping} if mapping else {})}
    if options.get("mapping_name"):
        details["mapping_name"] = options["mapping_name"]
    options.pop("mapping", None)
    return submit_job(project=project, data_type=data_type, records=imported.records, keys=imported.keys,
                      chunks=imported.chunks, input_checksum=checksum, input_name=name,
                      input_format=imported.format, options=options, import_details=details, **kwargs)


def file_checksum(raw: IO[bytes]) -> str:
    """The SHA-256 of a file as submitted (gzipped if it was), which `sha256sum` also prints:
    the job's record of exactly what it read."""
    raw.seek(0)
    digest = hashlib.sha256()
    while block := raw.read(1 << 20):
        digest.update(block)
    raw.seek(0)
    return digest.hexdigest()


def submit_items(*, project: Project, data_type: str, items: Iterable[Any], **kwargs: Any) -> ProcessingJob:
    """Submits records given as JSON objects, renamed by options["mapping"] /
    options["mapping_name"] when one is asked for."""
    from jobs import importing
    from jobs.services.mappings import resolve_mapping

    get_data_type(data_type)
    options = dict(kwargs.pop("options", None) or {})
    mapping = resolve_mapping(project, options)
    options.pop("mapping", None)
    details = {"format": "items", "id": importing.RECORD_IDS, **({"given_mapping": mapping} if mapping else {})}
    # The same rule for ids as a JSON file's (jobs.importing.opening._apply_json_mapping).
    records = importing.map_records(items, mapping)
    return submit_job(project=project, data_type=data_type, records=records, options=options,
                      import_details=details, **kwargs)


def flush_batches(pending: list[tuple[Batch, str, bytes]]) -> None:
    """Creates the pending batches and their payloads (codec, data), one statement for each
    table (jobs.sql.copy_payloads), and empties `pending`."""
    if not pending:
        return
    batches = Batch.objects.bulk_create([batch for batch, _, _ in pending])
    sql.copy_payloads([(batch.pk, codec, data) for batch, (_, codec, data) in zip(batches, pending, strict=True)])
    pending.clear()
