"""The audit log: who submitted, cancelled, retried or re-queued work, changed a project's
members, saved a mapping or reviewed a finding, and when. Written by the services
(jobs.services.audit), so the API, the pages, admin actions and manage.py commands all leave
the same entry; read by a project's owners (`GET /api/v1/projects/{id}/audit/`) and in the
admin, where it is read-only.

Entries outlive what they name: the user and the project are kept by name as well, so
deleting either leaves the entry readable (its foreign key becomes null)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from jobs.models.core import Project


class AuditAction(models.TextChoices):
    PROJECT_CREATED = "project.created", "Project created"
    JOB_SUBMITTED = "job.submitted", "Job submitted"
    JOB_CANCELLED = "job.cancelled", "Job cancelled"
    JOB_RETRIED = "job.retried", "Job retried"
    BATCHES_REQUEUED = "job.requeued", "Dead-lettered batches re-queued"
    MEMBER_ADDED = "member.added", "Member added"
    MEMBER_ROLE_CHANGED = "member.role_changed", "Member's role changed"
    MEMBER_REMOVED = "member.removed", "Member removed"
    MAPPING_SAVED = "mapping.saved", "Mapping saved"
    MAPPING_DELETED = "mapping.deleted", "Mapping deleted"
    BREAKER_FORCED = "breaker.forced", "Circuit breaker forced"
    FINDING_REVIEWED = "finding.reviewed", "Finding reviewed"


class AuditEntry(models.Model):
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    # The username when the entry was written; "system" for manage.py commands and scripts,
    # which run with the host's own access and no Zenith user.
    actor_name = models.CharField(max_length=150)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="audit_entries")
    project_key = models.CharField(max_length=64, blank=True, default="")  # the project's id, kept
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    # What the action was done to: "job:<id>", "user:<username>", "mapping:<name>", "breaker:<type>",
    # "finding:<rule>:<transaction external id>".
    target = models.CharField(max_length=255, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["project", "-at"], name="audit_project_at"),
            models.Index(fields=["at"], name="audit_at"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target}"
