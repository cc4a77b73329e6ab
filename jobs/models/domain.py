"""Rows that data-type handlers write: the results of processing, keyed for idempotency.

Every result row of a job carries `(job, item_index)` (the record's position in the job's
input) and is unique on it, so a batch that runs twice cannot write its results twice, and
`ON CONFLICT DO NOTHING` inserts stay cheap. Rows are deleted with their job (retention).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from jobs.models.core import ProcessingJob, Project


class Transaction(models.Model):
    """A normalised ledger or bank transaction. One row per (project, external id), so
    uploading the same file again changes nothing and reports duplicates instead."""

    # Indexes cost every insert (a large share of a batch commit: docs/performance.md), so only
    # the composite ones below are kept: (project, external_id) serves project lookups and
    # (job, item_index) serves job lookups. The job link is informational (retention unlinks
    # it before deleting a job), so it carries no foreign-key check either.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="transactions", db_index=False)
    external_id = models.CharField(max_length=128)
    date = models.DateField()
    # The value date (Valuta, Wertstellung, an MT940 line's value date) where the source
    # gives one: the booking date above is when the bank recorded the movement, this is when
    # it counted for interest and balance; forensic work needs both (issue 19).
    value_date = models.DateField(null=True, blank=True)
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    currency = models.CharField(max_length=3)
    # True when the record named no currency and the job's default or the project's base
    # currency was used (issue 19): the file implied it, Zenith did not read it.
    currency_inferred = models.BooleanField(default=False, db_default=False)
    account = models.CharField(max_length=128, blank=True, default="")
    counterparty = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    reference = models.CharField(max_length=128, blank=True, default="")
    job = models.ForeignKey(ProcessingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                            db_index=False, db_constraint=False)
    item_index = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="transaction_project_external_id")
        ]
        indexes = [
            # A project's rows by date (pages, periods) and, for reconciliation, by day and amount
            # range: one descent per day of a line's window reads only that day's rows in range
            # (docs/design.md, "Reconciliation").
            models.Index(fields=["project", "date", "amount"], name="transaction_day_amount"),
            # Reconciliation looks ledger rows up by reference too.
            models.Index(fields=["project", "reference"], name="transaction_project_reference"),
            # A job's stored rows, in input order, for its results page.
            models.Index(fields=["job", "item_index"], name="transaction_job_item"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.amount} {self.currency}"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class AnalysisRecord(models.Model):
    """The compact working set of an `analysis` job: what the job-wide rules (duplicate
    payments, per-account outliers) need, written per batch, read once by the finalizer."""

    job = models.ForeignKey(ProcessingJob, on_delete=models.CASCADE, related_name="+")
    item_index = models.PositiveIntegerField()
    external_id = models.CharField(max_length=128)
    date = models.DateField()
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    currency = models.CharField(max_length=3)
    account = models.CharField(max_length=128, blank=True, default="")
    counterparty = models.CharField(max_length=255, blank=True, default="")
    counterparty_key = models.CharField(max_length=255, blank=True, default="")
    reference = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "item_index"], name="analysis_record_job_item")]


class Finding(models.Model):
    """One red flag raised on one record by one rule, with a plain-language explanation.
    Analysts review it (jobs.models.reviews, matched by project, rule and external id)."""

    # Indexes cost every insert, so each one below serves a page (docs/design.md, "Findings and
    # reviews"): the findings browser walks (job, sort columns) from a cursor, one index per
    # sort; sorting by rule walks the unique (job, rule, item_index); (job, external_id) finds
    # a transaction's findings and the reviewed ones. Every index leads with the job, so the
    # job's own index would be redundant.
    job = models.ForeignKey(ProcessingJob, on_delete=models.CASCADE, related_name="findings", db_index=False)
    rule = models.CharField(max_length=32)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    item_index = models.PositiveIntegerField()
    external_id = models.CharField(max_length=128)
    date = models.DateField()
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    currency = models.CharField(max_length=3)
    account = models.CharField(max_length=128, blank=True, default="")
    counterparty = models.CharField(max_length=255, blank=True, default="")
    score = models.FloatField(null=True, blank=True)
    related_external_id = models.CharField(max_length=128, blank=True, default="")
    explanation = models.TextField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["job", "item_index", "rule"]
        constraints = [models.UniqueConstraint(fields=["job", "rule", "item_index"], name="finding_job_rule_item")]
        indexes = [
            models.Index(fields=["job", "severity", "date", "id"], name="finding_job_severity_date"),
            models.Index(fields=["job", "date", "id"], name="finding_job_date_id"),
            models.Index(fields=["job", "amount", "id"], name="finding_job_amount_id"),
            models.Index(fields=["job", "external_id"], name="finding_job_external_id"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} on {self.external_id}"


class MatchOutcome(models.TextChoices):
    MATCHED = "matched", "Matched"
    AMBIGUOUS = "ambiguous", "Ambiguous"
    UNMATCHED = "unmatched", "Unmatched"


class StatementMatch(models.Model):
    """How one bank-statement line of a `reconciliation` job ended: matched to one ledger
    transaction, ambiguous between candidates, or unmatched."""

    job = models.ForeignKey(ProcessingJob, on_delete=models.CASCADE, related_name="statement_matches")
    item_index = models.PositiveIntegerField()
    line_id = models.CharField(max_length=128)
    date = models.DateField()
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    currency = models.CharField(max_length=3)
    counterparty = models.CharField(max_length=255, blank=True, default="")
    reference = models.CharField(max_length=128, blank=True, default="")
    description = models.TextField(blank=True, default="")
    outcome = models.CharField(max_length=12, choices=MatchOutcome.choices)
    stage = models.CharField(max_length=16, blank=True, default="")  # reference, amount_date, counterparty
    transaction = models.ForeignKey(Transaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    matched_external_id = models.CharField(max_length=128, blank=True, default="")
    confidence = models.FloatField(null=True, blank=True)
    candidates = models.JSONField(default=list, blank=True)  # external ids, best first
    explanation = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["job", "item_index"]
        constraints = [models.UniqueConstraint(fields=["job", "item_index"], name="statement_match_job_item")]
        indexes = [
            models.Index(fields=["job", "outcome"], name="statement_match_job_outcome"),
            models.Index(fields=["job", "transaction"], name="statement_match_job_tx"),
        ]


class EntityGroupMember(models.Model):
    """One distinct normalised name of an `entity` job and the near-duplicate group it is in:
    the group's key (the key of its most frequent name) and size (distinct names in it).

    A job's names point here by (job, normalised name), so the job-wide grouping writes one row
    per distinct name instead of every name's row (docs/design.md, "Entity groups"). Batches
    add their new names ungrouped (their own key, size 1); the finalizer groups them."""

    job = models.ForeignKey(ProcessingJob, on_delete=models.CASCADE, related_name="entity_group_members")
    normalized_name = models.CharField(max_length=255)
    entity_key = models.CharField(max_length=16)
    group_key = models.CharField(max_length=16)
    group_size = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "normalized_name"], name="entity_member_job_name")]
        # The results list groups first, then by group (then its names in input order).
        indexes = [models.Index(fields=["job", "-group_size", "group_key"], name="entity_member_job_group")]


class EntityName(models.Model):
    """A name from an `entity` job: normalised, with a stable key (a hash of the normalised
    name, equal across jobs and projects). Its near-duplicate group is `group`, the job's
    `EntityGroupMember` of the same normalised name."""

    job = models.ForeignKey(ProcessingJob, on_delete=models.CASCADE, related_name="entity_names")
    item_index = models.PositiveIntegerField()
    external_id = models.CharField(max_length=128, blank=True, default="")
    name = models.CharField(max_length=255)
    normalized_name = models.CharField(max_length=255)
    entity_key = models.CharField(max_length=16)
    entity_type = models.CharField(max_length=32, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    # A join on (job, normalized_name), no column of its own: every stored name has its member
    # row (the batch that stores the name adds it in the same transaction).
    group = models.ForeignObject(EntityGroupMember, on_delete=models.DO_NOTHING, from_fields=["job", "normalized_name"],
                                 to_fields=["job", "normalized_name"], related_name="+")

    class Meta:
        ordering = ["job", "item_index"]
        constraints = [models.UniqueConstraint(fields=["job", "item_index"], name="entity_name_job_item")]
        # A group's names, in input order (the results list, after the members' own index).
        indexes = [models.Index(fields=["job", "normalized_name", "item_index"], name="entity_name_job_name")]


class TextEmbedding(models.Model):
    """A vector for one text of an `embedding` job (float32, little-endian, L2-normalised)."""

    job = models.ForeignKey(ProcessingJob, on_delete=models.CASCADE, related_name="embeddings")
    item_index = models.PositiveIntegerField()
    external_id = models.CharField(max_length=128)
    text = models.TextField()
    method = models.CharField(max_length=64)
    dimensions = models.PositiveIntegerField()
    vector = models.BinaryField()
    duplicate_of = models.CharField(max_length=128, blank=True, default="")  # first text of its near-dup group
    similarity = models.FloatField(null=True, blank=True)  # cosine to `duplicate_of`

    class Meta:
        ordering = ["job", "item_index"]
        constraints = [models.UniqueConstraint(fields=["job", "item_index"], name="text_embedding_job_item")]
        indexes = [models.Index(fields=["job", "external_id"], name="text_embedding_job_external")]


class EmbeddingBand(models.Model):
    """Locality-sensitive hash buckets of a text (MinHash bands): texts sharing a bucket are
    near-duplicate candidates. Grouping by bucket happens in the database, so detection
    needs no job-sized structure in memory."""

    job = models.ForeignKey(ProcessingJob, on_delete=models.CASCADE, related_name="+")
    key = models.BigIntegerField()
    item_index = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "key", "item_index"], name="embedding_band_unique")]
