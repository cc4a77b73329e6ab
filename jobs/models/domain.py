"""Rows that data-type handlers write: the results of processing, keyed for idempotency."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from .core import ProcessingJob, Project


class Transaction(models.Model):
    """A normalised ledger or bank transaction. One row per (project, external id), so
    uploading the same file again changes nothing and reports duplicates instead."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="transactions")
    external_id = models.CharField(max_length=128)
    date = models.DateField()
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    currency = models.CharField(max_length=3)
    account = models.CharField(max_length=128, blank=True, default="")
    counterparty = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    reference = models.CharField(max_length=128, blank=True, default="")
    job = models.ForeignKey(ProcessingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    item_index = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="transaction_project_external_id")
        ]
        indexes = [models.Index(fields=["project", "date"], name="transaction_project_date")]

    def __str__(self) -> str:
        return f"{self.external_id} {self.amount} {self.currency}"
