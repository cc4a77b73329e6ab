"""Jobs over a project's stored transactions instead of uploaded records.

`options.source = "project"` on a data type whose handler says `accepts_project_source`
(the built-in `analysis` and `embedding`) makes the job read the project's `Transaction`
rows, the ones earlier `transaction` jobs stored, instead of a file:

- **Submission** (`jobs.services.stored_jobs`) reads the project's row ids in order through one
  server-side cursor (one batch of ids in memory at a time) and stores per batch only
  the id runs the page covers, `[[first id, how many], ...]` (usually one run), under the
  codec `CODEC` ("project-tx"): the claim check carries the range, never copies of the rows.
  The job is a snapshot: rows stored after the submission are not part of it.
- **Execution**: `payloads.decode_items` hands such a payload to `load_records`, which reads
  the batch's rows in one query over its id range and returns them as transaction-shaped
  dicts, typed (a `date`, a `Decimal`) and marked as stored, so handlers take the values as
  they are instead of parsing them again with the job's file-reading options. A row gone
  since the submission (its project was emptied) comes back as a placeholder that the
  handler rejects with `transaction_missing`, so a batch always has `item_count` items.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from jobs.datatypes.base import RecordRejected
from jobs.engine import payloads
from jobs.engine.payloads import CODEC_PROJECT_TRANSACTIONS

CODEC = CODEC_PROJECT_TRANSACTIONS

SOURCE_OPTION = "source"
PROJECT = "project"
RECORDS = "records"
SOURCES = (RECORDS, PROJECT)

STORED = "_stored_transaction"  # marks a record loaded from the store (its primary key)
MISSING = "_missing_transaction"  # marks a placeholder for a row that no longer exists

TRANSACTION_COLUMNS = ("id", "external_id", "date", "amount", "currency", "account", "counterparty", "description",
                       "reference")


def source_of(options: dict | None) -> str:
    """"records" (the job's own input, the default) or "project"; ValueError otherwise."""
    value = (options or {}).get(SOURCE_OPTION, RECORDS)
    if value not in SOURCES:
        raise ValueError(f"options.{SOURCE_OPTION} must be one of: {', '.join(SOURCES)}")
    return value


def reads_project(options: dict | None) -> bool:
    try:
        return source_of(options) == PROJECT
    except ValueError:
        return False


def runs_of(ids: Iterable[int]) -> list[list[int]]:
    """Ascending ids as runs of consecutive ids: [5, 6, 7, 10] -> [[5, 3], [10, 1]]."""
    runs: list[list[int]] = []
    for tx_id in ids:
        if runs and runs[-1][0] + runs[-1][1] == tx_id:
            runs[-1][1] += 1
        else:
            runs.append([tx_id, 1])
    return runs


def encode(project_id: str, runs: list[list[int]]) -> bytes:
    return json.dumps({"project": project_id, "runs": runs}, separators=(",", ":")).encode("utf-8")


def load_records(data: bytes | memoryview) -> list[dict]:
    """The batch's stored transactions, in id order, one per id of its runs."""
    from jobs.models import Transaction

    spec = json.loads(bytes(data))
    runs = spec["runs"]
    if not runs:
        return []
    first, last = runs[0][0], runs[-1][0] + runs[-1][1] - 1
    wanted = [tx_id for start, count in runs for tx_id in range(start, start + count)]
    # One range scan on the primary key; ids of the range that are not in the runs (other
    # projects' rows, or rows committed after the submission) are left out.
    found = {values[0]: values for values in Transaction.objects.filter(
        project_id=spec["project"], id__gte=first, id__lte=last).values_list(*TRANSACTION_COLUMNS)}
    records = []
    for tx_id in wanted:
        values = found.get(tx_id)
        if values is None:
            records.append({"id": "", MISSING: tx_id})
            continue
        record: dict[str, Any] = dict(zip(TRANSACTION_COLUMNS, values, strict=True))
        record[STORED] = record.pop("id")
        record["id"] = record.pop("external_id")
        records.append(record)
    return records


def is_stored(record: dict) -> bool:
    """True for a record loaded from the store; raises RecordRejected for a vanished one."""
    if MISSING in record:
        raise RecordRejected("transaction_missing",
                             f"stored transaction #{record[MISSING]} no longer exists (deleted since the job "
                             "was submitted)", "id")
    return STORED in record


payloads.register_decoder(CODEC, load_records)
