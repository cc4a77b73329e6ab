"""Three statements every batch run makes, written by hand: load the batch (with its job and
payload), claim it, and record the end of the run.

Through the ORM each cost more to build than the database took to run it. Measured on the
transaction type (750 items, about 57 ms per batch on the benchmark machine): the load took
2.1 ms through the ORM, of which 0.9 ms went to compiling the query, against 0.8 ms as SQL;
the two UPDATEs spent about half a millisecond each on compilation. Here the SQL is built once
per process from the models' metadata, and values go through the fields' own converters and
preparation, so the statements follow the models, on PostgreSQL and on the embedded SQLite
alike. Everything else about a batch stays in the ORM.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from typing import Any

from django.db import connection
from django.db.models import Field, Model

from jobs.models import Batch, BatchPayload, BatchStatus, ProcessingJob

# Not read by a worker and possibly large: left deferred (Django loads a deferred field if
# anything reads it).
_DEFERRED_JOB_FIELDS = frozenset({"summary", "import_details"})


@dataclasses.dataclass(frozen=True)
class _Part:
    model: type[Model]
    attnames: list[str]
    converters: list[tuple[list, Any]]
    pk_index: int
    start: int
    stop: int

    def build(self, row: tuple) -> Model | None:
        values = list(row[self.start:self.stop])
        if values[self.pk_index] is None:  # an outer join found nothing
            return None
        for index, (converters, expression) in enumerate(self.converters):
            for convert in converters:
                values[index] = convert(values[index], expression, connection)
        return self.model.from_db(connection.alias, self.attnames, values)


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _now_sql() -> str:
    if connection.vendor == "postgresql":
        return "STATEMENT_TIMESTAMP()"
    if connection.vendor == "sqlite":
        return "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW')"
    return "CURRENT_TIMESTAMP"


def _fields(model: type[Model], skip: frozenset[str] = frozenset()) -> list[Field]:
    # In the model's order: Model.from_db takes the values of a partial load in that order.
    return [f for f in model._meta.concrete_fields if f.name not in skip]


@functools.cache
def _load_statement(vendor: str) -> tuple[str, list[_Part]]:
    tables = [(Batch, "b", frozenset()), (ProcessingJob, "j", _DEFERRED_JOB_FIELDS), (BatchPayload, "p", frozenset())]
    columns, parts, start = [], [], 0
    for model, alias, skip in tables:
        fields = _fields(model, skip)
        columns += [f"{alias}.{_quote(f.column)}" for f in fields]
        converters = []
        for f in fields:
            col = f.get_col(alias)
            converters.append((connection.ops.get_db_converters(col) + f.get_db_converters(connection), col))
        parts.append(_Part(model, [f.attname for f in fields], converters, fields.index(model._meta.pk), start,
                           start + len(fields)))
        start += len(fields)
    sql = (
        f"SELECT {', '.join(columns)} FROM {_quote(Batch._meta.db_table)} b "
        f"JOIN {_quote(ProcessingJob._meta.db_table)} j ON j.{_quote('id')} = b.{_quote('job_id')} "
        f"LEFT JOIN {_quote(BatchPayload._meta.db_table)} p ON p.{_quote('batch_id')} = b.{_quote('id')} "
        f"WHERE b.{_quote('id')} = %s"
    )
    return sql, parts


def load_batch(batch_id: int) -> Batch | None:
    """The batch with its job and payload loaded (as `select_related("job", "payload")`)."""
    sql, (batch_part, job_part, payload_part) = _load_statement(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [batch_id])
        row = cursor.fetchone()
    if row is None:
        return None
    batch = batch_part.build(row)
    batch.job = job_part.build(row)
    payload = payload_part.build(row)
    if payload is not None:
        batch.payload = payload
    return batch


def _prep(field_name: str, value: Any) -> Any:
    return Batch._meta.get_field(field_name).get_db_prep_save(value, connection)


@functools.cache
def _claim_statement(vendor: str) -> str:
    now = _now_sql()
    return (
        f"UPDATE {_quote(Batch._meta.db_table)} SET status = %s, claim_token = %s, attempts = %s, "
        f"worker_name = %s, started_at = {now}, heartbeat_at = {now}, finished_at = NULL, next_attempt_at = NULL "
        "WHERE id = %s AND status IN (%s, %s) AND rq_job_id = %s"
    )


def claim(batch: Batch, token: uuid.UUID, worker_name: str) -> bool:
    """Compare-and-set `queued`/`retrying` -> `running` with a new claim token, if the batch
    is still on the message that was loaded with it (`rq_job_id`)."""
    with connection.cursor() as cursor:
        cursor.execute(_claim_statement(connection.vendor), [
            BatchStatus.RUNNING.value, _prep("claim_token", token), batch.attempts + 1,
            worker_name, batch.id, BatchStatus.QUEUED.value, BatchStatus.RETRYING.value, batch.rq_job_id,
        ])
        return cursor.rowcount == 1


_END_FIELDS = ("status", "processed_count", "failed_count", "stats", "last_error", "rq_job_id", "rerun_scope",
               "next_attempt_at")


@functools.cache
def _end_statement(vendor: str) -> str:
    assignments = ", ".join(f"{Batch._meta.get_field(name).column} = %s" for name in _END_FIELDS)
    return (
        f"UPDATE {_quote(Batch._meta.db_table)} SET {assignments}, finished_at = {_now_sql()}, claim_token = NULL "
        "WHERE id = %s AND status = %s AND claim_token = %s"
    )


def end_run(batch_id: int, token: uuid.UUID, **values: Any) -> bool:
    """Records the end of a run (every field of `_END_FIELDS`, by name) if `token` still holds
    the claim: a compare-and-set, so a run that lost its batch to another worker changes nothing."""
    if set(values) != set(_END_FIELDS):
        raise TypeError(f"end_run needs exactly {_END_FIELDS}, got {sorted(values)}")
    with connection.cursor() as cursor:
        cursor.execute(_end_statement(connection.vendor), [
            *(_prep(name, values[name]) for name in _END_FIELDS),
            batch_id, BatchStatus.RUNNING.value, _prep("claim_token", token),
        ])
        return cursor.rowcount == 1
