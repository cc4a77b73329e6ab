"""RQ entry points. Thin on purpose: each hands over to a service function."""

from __future__ import annotations

from rq import get_current_job

from jobs.services import execution, finalizer, reconciler, retention


def _current() -> tuple[str, str | None]:
    job = get_current_job()
    if job is None:
        return "", None
    return job.worker_name or "", job.id


def run_batch(batch_id: int) -> str:
    worker_name, message_id = _current()
    return execution.run_batch(batch_id, worker_name=worker_name, message_id=message_id)


def finalize_job(job_id: str) -> bool:
    return finalizer.finalize_job(job_id)


def reconcile() -> dict:
    return reconciler.reconcile().as_dict()


def cleanup_old_jobs() -> dict:
    return retention.cleanup_old_jobs()
