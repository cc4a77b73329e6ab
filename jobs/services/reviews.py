"""Reviewing findings: an analyst's verdict (confirmed, dismissed, needs follow-up) with a note.

Each review is a new `FindingReview` row, never an edit of an earlier one, written with its audit
entry in one transaction. It names the logical finding (project, rule, transaction external id),
so it holds for the same finding in every later run of the analysis over the same data
(docs/design.md, "Findings and reviews"). Who may review is decided by the caller through
jobs.selectors.access (REVIEW: analysts and owners).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from jobs.errors import InvalidReview, ReviewConflict
from jobs.models import AuditAction, Finding, FindingReview, ProcessingJob, Project, ReviewState
from jobs.selectors.findings import NOTE_MAX_CHARS, latest_review
from jobs.services import audit


def review_finding(*, finding: Finding, state: str, note: str = "", actor: Any,
                   seen_review: int | None = None) -> FindingReview:
    """Records `actor`'s review of `finding` and its audit entry.

    `seen_review` is the id of the latest review the reviewer was shown (0 for none): when
    given and someone has reviewed the finding since, nothing is saved and ReviewConflict (409)
    says who did, so no verdict replaces one its author has not read. Omitted, the new review
    simply becomes the latest."""
    if state not in ReviewState.values:
        raise InvalidReview(f"state must be one of: {', '.join(ReviewState.values)}", allowed=ReviewState.values)
    note = (note or "").strip()
    if len(note) > NOTE_MAX_CHARS:
        raise InvalidReview(f"The note is longer than {NOTE_MAX_CHARS:,} characters.", limit=NOTE_MAX_CHARS)
    user = audit.actor_of(actor)
    project_id = ProcessingJob.objects.filter(id=finding.job_id).values_list("project_id", flat=True).get()
    with transaction.atomic():
        # Reviews of one project queue behind each other, so the check below and the insert
        # see the same latest review.
        Project.objects.select_for_update().filter(pk=project_id).first()
        latest = latest_review(project_id, finding.rule, finding.external_id)
        if seen_review is not None and (latest.id if latest else 0) != seen_review:
            if latest is None:
                raise ReviewConflict("The review you answered is no longer this finding's latest; reload it.")
            raise ReviewConflict(
                f"{latest.reviewer_name} reviewed this finding ({latest.get_state_display().lower()}) at "
                f"{latest.at:%Y-%m-%d %H:%M} UTC, after you opened it; read their review, then submit yours again.",
                latest_review=latest.id, state=latest.state, reviewer=latest.reviewer_name)
        review = FindingReview.objects.create(
            project_id=project_id, rule=finding.rule, external_id=finding.external_id, state=state, note=note,
            reviewer=user, reviewer_name=user.get_username() if user else audit.SYSTEM, job_id=finding.job_id)
        audit.record(actor=actor, action=AuditAction.FINDING_REVIEWED, project=project_id,
                     target=f"finding:{finding.rule}:{finding.external_id}",
                     details={"review": review.id, "state": state, "note": note,
                              "previous_state": latest.state if latest else None, "job": str(finding.job_id),
                              "finding": finding.id, "severity": finding.severity})
    return review
