"""Zenith's business logic: plain functions called by views, viewsets, admin actions, RQ tasks
and manage.py commands alike."""

from jobs.services.control import RetryReport, cancel_job, force_breaker, requeue_dead_batches, retry_job
from jobs.services.execution import run_batch
from jobs.services.finalizer import finalize_if_ready, finalize_job
from jobs.services.reconciler import ReconcileReport, reconcile
from jobs.services.stored_jobs import project_source_types, submit_project_transactions
from jobs.services.submission import submit_file, submit_items, submit_job

__all__ = [
    "ReconcileReport",
    "RetryReport",
    "cancel_job",
    "finalize_if_ready",
    "finalize_job",
    "force_breaker",
    "project_source_types",
    "reconcile",
    "requeue_dead_batches",
    "retry_job",
    "run_batch",
    "submit_file",
    "submit_items",
    "submit_job",
    "submit_project_transactions",
]
