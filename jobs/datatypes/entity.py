"""`entity` records: counterparty / entity names normalised, keyed and grouped.

A record has `name` and optional `id`, `type`, `country`.

- **Per batch**: each name is normalised (case, accents, punctuation, "&", trailing legal
  suffixes such as Ltd, LLC, GmbH, S.A.) and keyed: `entity_key` is a hash of the
  normalised name, so it is stable across jobs and projects ("ACME Ltd." and "Acme Limited"
  get the same key everywhere). Rows are stored in `EntityName` with their own key as group.
- **Job-wide** (summarize): near-duplicate names of the whole job ("Nortwind Traders",
  "Traders Northwind", "Northwind Intl" vs "Northwind International") are grouped by
  `jobs.forensics.entities.group_names`; each distinct name of a group takes the key of the
  group's most frequent name as `group_key`, written once per distinct name
  (`EntityGroupMember`, which the batch storing a name first adds ungrouped), not per row.
  Grouping needs all names, so it cannot be per batch; it holds the job's distinct
  normalised names in memory (not its records).

Options: `group_threshold` (0-1, default 0.88): the name similarity at which two names are
the same entity.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Count, F

from jobs.datatypes.base import BatchContext, Handler, RecordRejected
from jobs.datatypes.fields import optional_text, require_text
from jobs.datatypes.text import entity_key, normalize_name
from jobs.forensics.entities import DEFAULT_THRESHOLD, group_names
from jobs.models import EntityGroupMember, EntityName
from jobs.sql import analyze, insert_missing, insert_new, set_entity_groups

FIELDS = ["job", "item_index", "external_id", "name", "normalized_name", "entity_key", "entity_type", "country"]
MEMBER_FIELDS = ["job", "normalized_name", "entity_key", "group_key", "group_size"]

logger = logging.getLogger(__name__)


def threshold_for(options: dict | None) -> float:
    value = (options or {}).get("group_threshold", DEFAULT_THRESHOLD)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise RecordRejected("invalid_options", "options.group_threshold must be a number in (0, 1]", "options")
    return float(value)


class EntityHandler(Handler):
    key_field = "id"
    results_kind = "entities"
    bulk_loaded = (EntityName,)

    def item_key(self, record) -> str:
        if isinstance(record, dict):
            return str(record.get("id") or record.get("name") or "")[:255]
        return ""

    def validate(self, record: dict, ctx: BatchContext) -> dict:
        threshold_for(ctx.options)
        name = require_text(record, "name", 255)
        normalized = normalize_name(name)[:255]
        if not normalized:
            raise RecordRejected("invalid_name", f"name {name!r} has no letters or digits once normalised", "name")
        return {
            "id": optional_text(record, "id", 128),
            "name": name,
            "normalized_name": normalized,
            "entity_key": entity_key(normalized),
            "entity_type": optional_text(record, "type", 32).lower(),
            "country": optional_text(record, "country", 2).upper(),
        }

    def persist(self, rows, ctx: BatchContext) -> dict:
        table_rows = [(ctx.job_id, index, r["id"], r["name"], r["normalized_name"], r["entity_key"], r["entity_type"],
                       r["country"]) for index, r in rows]
        insert_new(EntityName, FIELDS, table_rows, ["job", "item_index"], "item_index")
        keys = {row["normalized_name"]: row["entity_key"] for _, row in rows}
        # Sorted, so that two batches adding the same new names wait on each other in one
        # order and never deadlock. Ungrouped until the finalizer groups the job's names.
        members = [(ctx.job_id, name, key, key, 1) for name, key in sorted(keys.items())]
        insert_missing(EntityGroupMember, MEMBER_FIELDS, members, ["job", "normalized_name"])
        return {"entities": len(rows), "distinct_keys_in_batch": len(set(keys.values()))}

    def summarize(self, job: Any, batch_stats: Iterable[dict]) -> dict:
        try:
            threshold = threshold_for(job.options)
        except RecordRejected as exc:
            return {"error": exc.message}
        names = EntityName.objects.filter(job_id=job.id)
        counts = dict(names.values("normalized_name").annotate(n=Count("id")).values_list("normalized_name", "n"))
        grouping = group_names(counts, threshold)
        # A second finalization (after a retry) starts from ungrouped rows.
        EntityGroupMember.objects.filter(job_id=job.id).exclude(group_size=1).update(group_key=F("entity_key"),
                                                                                     group_size=1)
        set_entity_groups(job.id, [(member, entity_key(head), len(members))
                                   for head, members in grouping.groups.items() for member in members])
        if grouping.groups:
            _refresh_member_statistics(job.id)
        largest = sorted(grouping.groups.items(), key=lambda item: (-len(item[1]), item[0]))[:10]
        return {
            "names": sum(counts.values()),
            "distinct_names": len(counts),
            "entities": len(set(grouping.canonical.values())),
            "near_duplicate_groups": len(grouping.groups),
            "names_in_groups": sum(len(members) for members in grouping.groups.values()),
            "largest_groups": [{"name": head, "key": entity_key(head), "members": members[:10]}
                               for head, members in largest],
        }


def _refresh_member_statistics(job_id: Any) -> None:
    """ANALYZE the group members once their groups are written: the finalizer's own ANALYZE
    ran before the summary, when every member was still ungrouped, and on those statistics the
    groups page read every name of the job to show the first 200 (docs/design.md, "Entity
    groups"). In a savepoint: a failure (a lock timeout) leaves the grouping intact."""
    try:
        with transaction.atomic():
            analyze([EntityGroupMember])
    except DatabaseError:
        logger.warning("could not refresh planner statistics of job %s's entity groups", job_id, exc_info=True)
