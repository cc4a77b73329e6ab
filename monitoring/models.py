from __future__ import annotations

from django.db import models
from django.utils import timezone


class AlertLevel(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class Alert(models.Model):
    """One episode of a condition: raised once when it starts, resolved once when it ends."""

    key = models.CharField(max_length=128)  # e.g. "cpu", "queue_depth", "breaker:transaction"
    level = models.CharField(max_length=16, choices=AlertLevel.choices)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    notified = models.JSONField(default=list, blank=True)  # channels that were told

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=models.Q(resolved_at__isnull=True),
                                    name="alert_one_active_per_key"),
        ]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message}"

    @property
    def is_active(self) -> bool:
        return self.resolved_at is None
