"""Writing the audit log (jobs.models.audit). Each service that changes who may do what, or
what work runs, calls `record` inside its own transaction: the entry exists exactly when the
change does, whichever door it came through (API, page, admin action, manage.py command)."""

from __future__ import annotations

from typing import Any

from jobs.models import AuditAction, AuditEntry, Project

SYSTEM = "system"


def actor_of(user: Any) -> Any:
    """The user to store, or None for a command, a script or an anonymous caller."""
    return user if getattr(user, "pk", None) and getattr(user, "is_authenticated", False) else None


def record(*, actor: Any, action: str, project: Project | str | None = None, target: str = "",
           details: dict | None = None) -> AuditEntry:
    """Writes one entry; `project` is the project or its id, None for system-wide actions."""
    user = actor_of(actor)
    project_id = project.pk if isinstance(project, Project) else project
    return AuditEntry.objects.create(
        actor=user, actor_name=user.get_username() if user else SYSTEM, project_id=project_id,
        project_key=project_id or "", action=action, target=target[:255], details=details or {},
    )


def record_submission(job: Any, actor: Any) -> AuditEntry:
    """`job.submitted`, written by the submission services in the transaction that stores the job."""
    return record(actor=actor, action=AuditAction.JOB_SUBMITTED, project=job.project_id, target=f"job:{job.id}",
                  details={"data_type": job.data_type, "items": job.total_items, "batches": job.total_batches,
                           "input_name": job.input_name, "input_format": job.input_format,
                           "input_checksum": job.input_checksum, "priority": job.priority})
