"""Saved column mappings: a project's named ways of reading its banks' exports."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from jobs.models.core import Project


class ImportMapping(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_mappings")
    name = models.SlugField(max_length=64)
    mapping = models.JSONField()
    description = models.CharField(max_length=255, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="import_mapping_project_name")]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.name}"
