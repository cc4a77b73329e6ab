"""Zenith's business logic: plain functions called by views, viewsets, admin actions, RQ tasks
and manage.py commands alike."""

from .control import (
    JobAlreadyFinished,
    JobStateError,
    RetryReport,
    cancel_job,
    force_breaker,
    requeue_dead_batches,
    retry_job,
)
from .execution import run_batch
from .finalizer import finalize_if_ready, finalize_job
from .reconciler import ReconcileReport, reconcile
from .stored import NoStoredTransactions, project_source_types, submit_project_transactions
from .submission import (
    AdmissionRefused,
    NoItems,
    SubmissionError,
    TooManyItems,
    submit_file,
    submit_items,
    submit_job,
)

__all__ = [
    "AdmissionRefused",
    "JobAlreadyFinished",
    "JobStateError",
    "NoItems",
    "NoStoredTransactions",
    "ReconcileReport",
    "RetryReport",
    "SubmissionError",
    "TooManyItems",
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
