"""Reviews of findings: an analyst's verdict on a red flag (confirmed, dismissed, needs
follow-up) with a note, who gave it and when.

A review names the *logical* finding, not a `Finding` row: the project, the rule and the
flagged transaction's external id. Re-running the analysis over the same data makes new
`Finding` rows (new ids, a new job) for the same logical findings, and their reviews are
theirs at once, with nothing copied (docs/design.md, "Findings and reviews"). Reviews are
project rows: deleting a job (retention) keeps them and only unlinks the job.

History is kept: every action is a new row, none is ever changed, and a finding's current
state is its latest review (highest id). Written by jobs.services.reviews, read by
jobs.selectors.findings.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from jobs.models.core import ProcessingJob, Project


class ReviewState(models.TextChoices):
    CONFIRMED = "confirmed", "Confirmed"
    DISMISSED = "dismissed", "Dismissed"
    FOLLOW_UP = "follow_up", "Needs follow-up"


class FindingReview(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="finding_reviews",
                                db_index=False)  # the (project, rule, external_id, id) index leads with it
    rule = models.CharField(max_length=32)
    external_id = models.CharField(max_length=128)
    state = models.CharField(max_length=16, choices=ReviewState.choices)
    note = models.TextField(blank=True, default="")
    at = models.DateTimeField(default=timezone.now)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    # The username when the review was given, so deleting the account leaves it readable.
    reviewer_name = models.CharField(max_length=150)
    # The job whose finding the reviewer was looking at: where the review was made, not what
    # it applies to (that is the logical finding above). Retention unlinks it.
    job = models.ForeignKey(ProcessingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["id"]  # queries order explicitly; this only keeps the admin and shells stable
        indexes = [
            # A finding's history and its latest review; findings filtered by review state
            # probe it once per finding (jobs.selectors.findings).
            models.Index(fields=["project", "rule", "external_id", "id"], name="finding_review_key"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} on {self.external_id}: {self.state} by {self.reviewer_name}"
