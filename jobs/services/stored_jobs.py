"""Submitting a job over a project's stored transactions (`options.source = "project"`; see
`jobs.datatypes.stored_source` for what the batches carry and how workers read them).

Like `submit_job` it checks the request, refuses it while the data type's breaker is open or
the backlog is critical, and writes the job, its batches and their payloads in one
transaction before opening the job's window. The difference is where the items come from:
keyset pages of the project's `Transaction` ids (`id > last ORDER BY id LIMIT batch size`),
so memory holds one page of ids, and each batch's payload is that page's id runs.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from django.conf import settings
from django.db import transaction

from jobs.datatypes import stored_source
from jobs.datatypes.registry import get_data_type, registry
from jobs.engine import dispatch, optimizer
from jobs.errors import NoStoredTransactions, SubmissionError, TooManyItems
from jobs.models import Batch, ProcessingJob, Project, Transaction
from jobs.services import audit
from jobs.services.submission import (
    FLUSH_EVERY_BATCHES,
    admitted_batch_config,
    flush_batches,
    validate_options,
    validate_priority,
)
from zenith.infra.events import log_event
from zenith.infra.logging import get_correlation_id


def project_source_types() -> list[str]:
    """The data types that can read a project's stored transactions."""
    return sorted(name for name, spec in registry().items()
                  if getattr(spec.handler, "accepts_project_source", False))


def submit_project_transactions(
    *,
    project: Project,
    data_type: str,
    priority: int | None = None,
    options: dict | None = None,
    submitted_by: Any = None,
    correlation_id: str = "",
    batch_size: int | None = None,
) -> ProcessingJob:
    """A `data_type` job (analysis, embedding) over every transaction the project has stored
    when it is submitted. `options.source` is set to "project" on the job."""
    spec = get_data_type(data_type)
    priority = validate_priority(priority)
    options = dict(validate_options(options))
    try:
        stored_source.source_of(options)
    except ValueError as exc:
        raise SubmissionError(str(exc)) from None
    options[stored_source.SOURCE_OPTION] = stored_source.PROJECT
    if not getattr(spec.handler, "accepts_project_source", False):
        raise SubmissionError(
            f"Data type '{spec.name}' cannot read a project's stored transactions; "
            f"options.source=project works for: {', '.join(project_source_types())}.")
    config = admitted_batch_config(spec, batch_size)
    limit = settings.ZENITH_MAX_ITEMS_PER_JOB
    checksum = hashlib.sha256()
    rows = Transaction.objects.filter(project=project).order_by("id").values_list("id", flat=True)

    with transaction.atomic():
        job = ProcessingJob.objects.create(
            project=project, data_type=spec.name, priority=priority, options=options,
            submitted_by=submitted_by if getattr(submitted_by, "pk", None) else None,
            input_name=f"stored transactions of project {project.pk}"[:255], input_format=stored_source.PROJECT,
            correlation_id=correlation_id or get_correlation_id(), batch_config=config.as_dict(),
        )
        total, number, last_id = 0, 0, 0
        first_id = None
        pending: list[tuple[Batch, str, bytes]] = []
        # One ordered query read through a server-side cursor, not a keyset page per batch: a
        # page's plan depends on the table's statistics, and a bad one was paid 2,000 times
        # (docs/performance.md). One statement is planned once, whatever the statistics.
        ids = rows.iterator(chunk_size=max(config.size, 2_000))
        while page := list(itertools.islice(ids, config.size)):
            if total + len(page) > limit:
                raise TooManyItems(limit)
            number += 1
            runs = stored_source.runs_of(page)
            data = stored_source.encode(project.pk, runs)
            checksum.update(data)
            batch = Batch(job=job, number=number, start_index=total, item_count=len(page))
            pending.append((batch, stored_source.CODEC, data))
            first_id = page[0] if first_id is None else first_id
            total += len(page)
            last_id = page[-1]
            if len(pending) >= FLUSH_EVERY_BATCHES:
                flush_batches(pending)
        flush_batches(pending)
        if total == 0:
            raise NoStoredTransactions(project.pk)

        job.total_items = total
        job.total_batches = number
        job.input_checksum = checksum.hexdigest()
        job.import_details = {"source": stored_source.PROJECT, "transactions": total, "first_id": first_id,
                              "last_id": last_id}
        job.batch_config = {
            **config.as_dict(),
            "concurrent_batches": optimizer.cap_concurrency(config.concurrent_batches, total, config.size),
        }
        job.save(update_fields=["total_items", "total_batches", "input_checksum", "import_details",
                                "batch_config"])
        dispatch.fill_window(job, pace=False)
        audit.record_submission(job, submitted_by)

    log_event("job.submitted", job, data_type=spec.name, items=total, batches=number, batch_size=config.size,
              priority=priority, project_id=project.pk, source=stored_source.PROJECT)
    return job
