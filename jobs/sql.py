"""Every SQL statement Zenith writes by hand, in one place (docs/design.md, "The SQL module").

Exactly-once counting and the batch life cycle rest on these statements, so they are kept
where they can be read together. The ORM does everything else. Conventions:
- identifiers come from the models' metadata and are quoted by the connection (`_q`), values
  are always parameters, statuses come from the model enums;
- each statement is built once per process and database vendor (`functools.cache`): on the
  batch path, compiling an ORM query cost more than running it (docs/performance.md);
- each function's docstring names the guarantee its statement serves.

Statements:
- `load_batch`: the batch with its job and payload, in one round trip (a worker's first read);
- `claim`: compare-and-set `queued`/`retrying` -> `running` with a new claim token;
- `end_run`: compare-and-set on the claim token, so a run that lost its batch changes nothing;
- `add_to_job_counters`: a job's counters move by deltas, in the transaction that explains them;
- `pick_window`: count, pick and mark the next pending batches of a job in one statement;
- `insert_new`: bulk insert of result rows, skipping keys already taken, saying which were new;
- `insert_missing`: bulk insert of rows a rerun may write again, in binary COPY, conflicts skipped;
- `copy_payloads`: a submission's batch payloads written in binary COPY;
- `set_entity_groups`, `mark_near_duplicates`: a job's rows take values given per key (a distinct
  name's group, a text's first near-duplicate), joined to the staging table in one UPDATE;
- `ledger_candidates`: the ledger rows within a reconciliation batch's windows of day and amount;
- `matched_transactions`: which of many ledger rows a reconciliation job has matched already;
- `band_keys_of`: the MinHash bucket keys of some of an embedding job's texts;
- `analyze`: fresh planner statistics for tables a job just filled in bulk.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connection, models
from django.db.models import Field, Model, Q

from jobs.models import (
    Batch,
    BatchPayload,
    BatchStatus,
    EmbeddingBand,
    EntityGroupMember,
    MatchOutcome,
    ProcessingJob,
    StatementMatch,
    TextEmbedding,
    Transaction,
)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _now_sql() -> str:
    if connection.vendor == "postgresql":
        return "STATEMENT_TIMESTAMP()"
    if connection.vendor == "sqlite":
        return "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW')"
    return "CURRENT_TIMESTAMP"


# --- a batch run: load, claim, end -------------------------------------------------------

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


def _fields(model: type[Model], skip: frozenset[str] = frozenset()) -> list[Field]:
    # In the model's order: Model.from_db takes the values of a partial load in that order.
    return [f for f in model._meta.concrete_fields if f.name not in skip]


@functools.cache
def _load_statement(vendor: str) -> tuple[str, list[_Part]]:
    tables = [(Batch, "b", frozenset()), (ProcessingJob, "j", _DEFERRED_JOB_FIELDS), (BatchPayload, "p", frozenset())]
    columns, parts, start = [], [], 0
    for model, alias, skip in tables:
        fields = _fields(model, skip)
        columns += [f"{alias}.{_q(f.column)}" for f in fields]
        converters = []
        for f in fields:
            col = f.get_col(alias)
            converters.append((connection.ops.get_db_converters(col) + f.get_db_converters(connection), col))
        parts.append(_Part(model, [f.attname for f in fields], converters, fields.index(model._meta.pk), start,
                           start + len(fields)))
        start += len(fields)
    sql = (
        f"SELECT {', '.join(columns)} FROM {_q(Batch._meta.db_table)} b "
        f"JOIN {_q(ProcessingJob._meta.db_table)} j ON j.{_q('id')} = b.{_q('job_id')} "
        f"LEFT JOIN {_q(BatchPayload._meta.db_table)} p ON p.{_q('batch_id')} = b.{_q('id')} "
        f"WHERE b.{_q('id')} = %s"
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
        f"UPDATE {_q(Batch._meta.db_table)} SET status = %s, claim_token = %s, attempts = %s, "
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
        f"UPDATE {_q(Batch._meta.db_table)} SET {assignments}, finished_at = {_now_sql()}, claim_token = NULL "
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

# --- job counters ------------------------------------------------------------------------

def add_to_job_counters(job_id: uuid.UUID, deltas: dict[str, int], *, clear_waiting_prefix: str | None = None
                        ) -> tuple[int, int, int, int, bool] | None:
    """Adds `deltas` (counter name -> amount) to the job's counters in one UPDATE, and, with
    `clear_waiting_prefix`, empties an `error_message` that starts with it. Returns
    (batches_completed, batches_failed, batches_cancelled, total_batches, completed) after
    the update, or None when the job does not exist. Serves "every job counter equals the sum
    over its batches": callers run it in the transaction that changes those batches
    (jobs.services.accounting)."""
    assignments, params = [], []
    for name, value in deltas.items():
        if value:
            column = _q(ProcessingJob._meta.get_field(name).column)
            assignments.append(f"{column} = {column} + %s")
            params.append(int(value))
    if clear_waiting_prefix is not None:
        message = _q("error_message")
        assignments.append(f"{message} = CASE WHEN {message} LIKE %s THEN '' ELSE {message} END")
        params.append(clear_waiting_prefix + "%")
    if not assignments:
        assignments.append(f"{_q('total_batches')} = {_q('total_batches')}")
    job_pk = ProcessingJob._meta.pk.get_db_prep_value(job_id, connection)
    returned = ", ".join(_q(name) for name in ("batches_completed", "batches_failed", "batches_cancelled",
                                                "total_batches", "completed_at"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(ProcessingJob._meta.db_table)} SET {', '.join(assignments)} WHERE {_q('id')} = %s "
            f"RETURNING {returned}",
            [*params, job_pk],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return row[0], row[1], row[2], row[3], row[4] is not None


# --- a job's window ----------------------------------------------------------------------

@functools.cache
def _pick_window_statement(vendor: str) -> str:
    table = _q(Batch._meta.db_table)
    return f"""
        WITH active AS (
            SELECT count(*) AS n FROM {table} WHERE job_id = %(job)s AND status IN (%(queued)s, %(running)s)
        ), picked AS (
            SELECT id, number FROM {table} WHERE job_id = %(job)s AND status = %(pending)s ORDER BY number
            LIMIT GREATEST(%(cap)s - (SELECT n FROM active), 0) FOR UPDATE SKIP LOCKED
        )
        UPDATE {table} AS b SET status = %(queued)s, queued_at = statement_timestamp(),
               not_before = %(not_before)s,
               rq_job_id = CASE WHEN %(keep)s::text IS NOT NULL AND b.number = (SELECT min(number) FROM picked)
                                THEN %(keep)s::text ELSE replace(gen_random_uuid()::text, '-', '') END
        WHERE b.id = ANY(ARRAY(SELECT id FROM picked)) AND b.status = %(pending)s
        RETURNING b.id, b.number, b.rq_job_id
    """
# How the pick stays cheap on a job of thousands of batches (tests/services/test_window_query_plan.py):
# the pending batches are read in number order from a partial index (batch_job_pending), and
# the picked ids are matched by primary key (= ANY of an array): joined as a table, the
# planner guessed hundreds of picked rows and hashed every pending batch of every job. A
# large submission runs ANALYZE on the batch table, so the estimates know the new batches.


def pick_window(job_id: uuid.UUID, cap: int, not_before: dt.datetime | None, keep_for: str | None
                ) -> list[tuple[int, int, str]]:
    """PostgreSQL only. Moves up to `cap` minus the job's queued and running batches from
    pending to queued, lowest numbers first, each with a new RQ message id (the first one gets
    `keep_for` when given, for a chain). Count, pick and mark in one statement, because this
    runs inside every batch's commit; SKIP LOCKED keeps two commits from picking the same
    batch. Returns (id, number, rq_job_id) of each picked batch."""
    with connection.cursor() as cursor:
        cursor.execute(_pick_window_statement(connection.vendor), {
            "job": job_id, "cap": cap, "not_before": not_before, "keep": keep_for,
            "pending": BatchStatus.PENDING.value, "queued": BatchStatus.QUEUED.value,
            "running": BatchStatus.RUNNING.value,
        })
        return cursor.fetchall()


# --- bulk result rows --------------------------------------------------------------------

def insert_new(
    model: type[models.Model],
    field_names: Sequence[str],
    rows: Sequence[tuple],
    unique_fields: Sequence[str],
    marker_field: str,
) -> set[Any]:
    """Inserts `rows` (tuples in `field_names` order) whose unique key is not taken yet.

    All rows must share the values of every unique field but the last (e.g. one project).
    When two rows share a key, the one with the smaller `marker_field` wins. Returns the
    marker values of the rows really inserted. Must run inside a transaction.
    """
    if not rows:
        return set()
    if connection.vendor == "postgresql":
        return _insert_new_postgres(model, field_names, rows, unique_fields, marker_field)
    return _insert_new_generic(model, field_names, rows, unique_fields, marker_field)


def _column(model: type[models.Model], name: str) -> str:
    return model._meta.get_field(name).column


# Column types whose binary COPY format psycopg writes from the Python values the handlers
# pass (str, int, Decimal, date, datetime, UUID, bool, float, or None). Binary COPY with the
# types stated costs about a third of the CPU of text COPY with a type guessed per value
# (docs/performance.md, "Profiles"); a table with any other column type is copied as text.
_BINARY_COPY_TYPES = frozenset({"varchar", "text", "integer", "bigint", "smallint", "numeric", "date",
                                "timestamp with time zone", "uuid", "boolean", "double precision", "bytea"})


def _binary_copy_types(model: type[models.Model], field_names: Sequence[str]) -> list[str] | None:
    types = []
    for name in field_names:
        db_type = (model._meta.get_field(name).db_type(connection) or "").split("(")[0].strip()
        if db_type not in _BINARY_COPY_TYPES:
            return None
        types.append(db_type)
    return types


@functools.cache
def _insert_new_sql(vendor: str, model: type[models.Model], field_names: tuple[str, ...],
                    unique_fields: tuple[str, ...], marker_field: str) -> str:
    stage = _stage_plan(vendor, model, field_names)
    conflict = ", ".join(_q(_column(model, name)) for name in unique_fields)
    marker = _q(_column(model, marker_field))
    return (f"INSERT INTO {stage.table} ({stage.column_list}) SELECT {stage.column_list} FROM {stage.stage} "
            f"ORDER BY {marker} ON CONFLICT ({conflict}) DO NOTHING RETURNING {marker}")


def _insert_new_postgres(model, field_names, rows, unique_fields, marker_field) -> set[Any]:
    """Serves "stored once per key": COPY into a staging table, then one
    `INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING` says which rows were new.
    (Rows sent as one array per column to `unnest` instead were measured: psycopg's array
    dumping cost the workers more CPU than the COPY and TRUNCATE it saved PostgreSQL.)"""
    statement = _insert_new_sql(connection.vendor, model, tuple(field_names), tuple(unique_fields), marker_field)
    with connection.cursor() as cursor:
        stage = _staged(cursor, model, field_names, rows)
        cursor.execute(statement)
        inserted = {row[0] for row in cursor.fetchall()}
        cursor.execute(stage.truncate_sql)
    return inserted


@dataclasses.dataclass(frozen=True)
class _StagePlan:
    table: str
    column_list: str
    stage: str
    create_sql: str
    copy_sql: str
    truncate_sql: str
    types: list[str] | None


@functools.cache
def _stage_plan(vendor: str, model: type[models.Model], field_names: tuple[str, ...]) -> _StagePlan:
    # Quoting names and reading column types per batch cost more than some statements did.
    table = _q(model._meta.db_table)
    column_list = ", ".join(_q(_column(model, name)) for name in field_names)
    stage = _q(f"zenith_stage_{model._meta.db_table}_{len(field_names)}")
    types = _binary_copy_types(model, field_names)
    binary = " (FORMAT BINARY)" if types else ""
    # One staging table per session instead of one per batch (creating and dropping it
    # cost a noticeable share of a batch commit). IF NOT EXISTS keeps this correct
    # behind pgbouncer's transaction pooling, where the next transaction may run on a
    # server connection that has not created it yet. It is emptied with TRUNCATE, not
    # DELETE: temporary tables are never vacuumed, so deleted rows piled up and every
    # batch scanned all earlier ones. (ON COMMIT DELETE ROWS was measured too: the
    # truncation moves into COMMIT at the same cost, about 0.6 ms.)
    return _StagePlan(
        table=table, column_list=column_list, stage=stage,
        create_sql=(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT PRESERVE ROWS AS "
                    f"SELECT {column_list} FROM {table} WITH NO DATA"),
        copy_sql=f"COPY {stage} ({column_list}) FROM STDIN{binary}",
        truncate_sql=f"TRUNCATE {stage}",
        types=types,
    )


def _staged(cursor, model: type[models.Model], field_names: Sequence[str], rows: Sequence[tuple]) -> _StagePlan:
    """The plan of the session's staging table for `model` and these columns, after `rows`
    were copied into it, in binary when every column's type allows."""
    plan = _stage_plan(connection.vendor, model, tuple(field_names))
    cursor.execute(plan.create_sql)
    with cursor.cursor.copy(plan.copy_sql) as copy:
        if plan.types:
            copy.set_types(plan.types)
        for row in rows:
            copy.write_row(row)
    return plan


def insert_missing(model: type[models.Model], field_names: Sequence[str], rows: Sequence[tuple],
                   unique_fields: Sequence[str]) -> None:
    """Inserts `rows` (tuples in `field_names` order), skipping any whose `unique_fields` are
    taken: a batch that runs again writes the same rows and changes nothing. On PostgreSQL
    through the session's staging table in binary COPY (docs/performance.md, "Embeddings of
    a ledger's descriptions"); elsewhere `bulk_create`. Must run inside a transaction."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**{_attname(model, name): value for name, value in zip(field_names, row,
                                                                                                 strict=True)})
                                   for row in rows], batch_size=2000, ignore_conflicts=True)
        return
    conflict = ", ".join(_q(_column(model, name)) for name in unique_fields)
    with connection.cursor() as cursor:
        stage = _staged(cursor, model, field_names, rows)
        cursor.execute(f"INSERT INTO {stage.table} ({stage.column_list}) SELECT {stage.column_list} "
                       f"FROM {stage.stage} ON CONFLICT ({conflict}) DO NOTHING")
        cursor.execute(stage.truncate_sql)


def set_entity_groups(job_id: uuid.UUID, assignments: Sequence[tuple[str, str, int]]) -> None:
    """Each (normalised name, group key, group size) given is written to the job's
    `EntityGroupMember` of that name, which every `EntityName` of the job with that name
    joins; other names are left as they are."""
    _update_job_rows(EntityGroupMember, job_id, "normalized_name", ("group_key", "group_size"), assignments)


def mark_near_duplicates(job_id: uuid.UUID, marks: Sequence[tuple[int, str, float]]) -> None:
    """Each (item index, external id of its group's first text, similarity to it) given is
    written to the job's `TextEmbedding` of that index."""
    _update_job_rows(TextEmbedding, job_id, "item_index", ("duplicate_of", "similarity"), marks)


def _update_job_rows(model: type[models.Model], job_id: uuid.UUID, key_field: str, value_fields: Sequence[str],
                     rows: Sequence[tuple]) -> None:
    """Sets `value_fields` on the job's rows of `model` whose `key_field` equals each row's
    first value (rows are (key, *values)). On PostgreSQL the rows are copied into the
    session's staging table and joined in one UPDATE (a CASE per key, the portable form,
    compared every row with every key of its chunk); elsewhere one UPDATE per distinct set of
    values, in chunks of keys. Must run inside a transaction."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        by_values: dict[tuple, list[Any]] = {}
        for key, *values in rows:
            by_values.setdefault(tuple(values), []).append(key)
        of_job = model.objects.filter(job_id=job_id)
        for values, keys in by_values.items():
            for start in range(0, len(keys), 500):
                of_job.filter(**{f"{key_field}__in": keys[start:start + 500]}).update(
                    **dict(zip(value_fields, values, strict=True)))
        return
    table = _q(model._meta.db_table)
    assignments = ", ".join(f"{_q(_column(model, name))} = s.{_q(_column(model, name))}" for name in value_fields)
    key = _q(_column(model, key_field))
    with connection.cursor() as cursor:
        stage = _staged(cursor, model, (key_field, *value_fields), rows)
        cursor.execute(f"UPDATE {table} AS t SET {assignments} FROM {stage.stage} AS s "
                       f"WHERE t.{_q('job_id')} = %s AND t.{key} = s.{key}", [job_id])
        cursor.execute(stage.truncate_sql)


CANDIDATE_COLUMNS = ("id", "external_id", "date", "amount", "currency", "reference", "counterparty")
_OR_TERMS = 100  # OR-ed windows per query off PostgreSQL (SQLite's expression depth is 1000)


def ledger_candidates(*, project_id: str, windows: Sequence[tuple[dt.date, Any, Any]], references: Sequence[str],
                      account: str | None = None) -> Iterator[tuple]:
    """The project's ledger rows (`CANDIDATE_COLUMNS`, of `account` when given) whose date is a
    window's day and whose amount is in its range (inclusive), or whose reference is one of
    `references`. A row may come more than once.

    On PostgreSQL one statement: the windows go as three arrays, and each (day, range) is one
    descent of the (project, date, amount) index, reading only rows in range (docs/design.md,
    "Reconciliation"). The LATERAL subquery, fenced so that it stays one, keeps it a descent
    per window whatever the planner estimates. Elsewhere OR-ed ranges through the ORM, in
    chunks."""
    if connection.vendor != "postgresql":
        ledger = Transaction.objects.filter(project_id=project_id)
        if account:
            ledger = ledger.filter(account=account)
        by_range: dict[tuple, list[dt.date]] = {}
        for day, low, high in windows:
            by_range.setdefault((low, high), []).append(day)
        terms = [Q(date__in=days, amount__gte=low, amount__lte=high) for (low, high), days in by_range.items()]
        if references:
            terms.append(Q(reference__in=list(references)))
        for start in range(0, len(terms), _OR_TERMS):
            condition = Q()
            for term in terms[start:start + _OR_TERMS]:
                condition |= term
            yield from ledger.filter(condition).values_list(*CANDIDATE_COLUMNS)
        return
    days, lows, highs = (list(column) for column in zip(*windows, strict=True)) if windows else ([], [], [])
    with connection.cursor() as cursor:
        cursor.execute(_ledger_candidates_sql(bool(account)), {
            "project": project_id, "account": account, "days": days, "lows": lows, "highs": highs,
            "references": list(references)})
        while rows := cursor.fetchmany(5000):
            yield from rows


@functools.cache
def _ledger_candidates_sql(by_account: bool) -> str:
    column = functools.partial(_column, Transaction)
    table = _q(Transaction._meta.db_table)
    selected = ", ".join(f"t.{_q(column(name))}" for name in CANDIDATE_COLUMNS)
    project, date, amount = (f"t.{_q(column(name))}" for name in ("project", "date", "amount"))
    account = f" AND t.{_q(column('account'))} = %(account)s" if by_account else ""
    return (f"SELECT c.* FROM unnest(%(days)s::date[], %(lows)s::numeric[], %(highs)s::numeric[]) "
            f"AS w(day, low, high) CROSS JOIN LATERAL (SELECT {selected} FROM {table} AS t "
            f"WHERE {project} = %(project)s AND {date} = w.day AND {amount} BETWEEN w.low AND w.high{account} "
            # OFFSET 0 keeps the subquery from being pulled up into a plain join, which the
            # planner, without statistics on a fresh ledger, ran as one scan of every row of
            # the project hashed against the windows.
            f"OFFSET 0) AS c "
            f"UNION ALL SELECT {selected} FROM {table} AS t WHERE {project} = %(project)s "
            f"AND t.{_q(column('reference'))} = ANY(%(references)s::text[]){account}")


def _in_chunks(rows: models.QuerySet, field: str, values: Sequence[Any], columns: Sequence[str]) -> Iterator[tuple]:
    """`columns` of the `rows` whose `field` is one of `values`, by IN lists of at most 900 (under
    SQLite's variable limit): the fallback of the array-parameter statements off PostgreSQL."""
    values = list(values)
    for start in range(0, len(values), 900):
        yield from rows.filter(**{f"{field}__in": values[start:start + 900]}).values_list(*columns)


def matched_transactions(job_id: uuid.UUID, transaction_ids: Sequence[int]) -> dict[int, str]:
    """Of `transaction_ids`, those a statement line of the job has matched, with that line's id
    (what a reconciliation batch must not match again). On PostgreSQL the ids go as one array
    parameter: a batch asks about tens of thousands of candidates, and compiling and binding
    an IN list of that size cost four times what running it did."""
    if not transaction_ids:
        return {}
    if connection.vendor != "postgresql":
        matched = StatementMatch.objects.filter(job_id=job_id, outcome=MatchOutcome.MATCHED)
        return dict(_in_chunks(matched, "transaction_id", transaction_ids, ("transaction_id", "line_id")))
    with connection.cursor() as cursor:
        cursor.execute(_matched_transactions_sql(), [job_id, MatchOutcome.MATCHED, list(transaction_ids)])
        return dict(cursor.fetchall())


@functools.cache
def _matched_transactions_sql() -> str:
    table, column = _q(StatementMatch._meta.db_table), functools.partial(_column, StatementMatch)
    transaction = _q(column("transaction"))
    # The array is cast to the column's own type: psycopg sends small ints as int4[], and
    # PostgreSQL tests `bigint = ANY(int4[])` element by element, where a same-typed array is
    # hashed. Planned without statistics on the job's fresh matches (a filter over every
    # match of the job), a batch's check took 0.5-1 s and grew with the job.
    array_type = StatementMatch._meta.get_field("transaction").rel_db_type(connection)
    return (f"SELECT {transaction}, {_q(column('line_id'))} FROM {table} "
            f"WHERE {_q(column('job'))} = %s AND {_q(column('outcome'))} = %s "
            f"AND {transaction} = ANY(%s::{array_type}[])")


def band_keys_of(job_id: uuid.UUID, item_indexes: Sequence[int]) -> Iterator[tuple[int, int]]:
    """(bucket key, item index) of the given texts of an embedding job, by key then index.
    On PostgreSQL one statement with the indexes as one typed array (hashed, a filter over the
    job's bucket rows); elsewhere chunked IN lists, sorted here."""
    if not item_indexes:
        return
    if connection.vendor != "postgresql":
        bands = EmbeddingBand.objects.filter(job_id=job_id)
        yield from sorted(_in_chunks(bands, "item_index", item_indexes, ("key", "item_index")))
        return
    column = functools.partial(_column, EmbeddingBand)
    key, index = _q(column("key")), _q(column("item_index"))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {key}, {index} FROM {_q(EmbeddingBand._meta.db_table)} "
                       f"WHERE {_q(column('job'))} = %s AND {index} = ANY(%s::integer[]) ORDER BY {key}, {index}",
                       [job_id, list(item_indexes)])
        while rows := cursor.fetchmany(10_000):
            yield from rows


def vector_digests(job_id: uuid.UUID) -> Iterator[tuple[int, str]]:
    """(item index, a digest of its vector) for every text of an embedding job, in item
    order, read in chunks. On PostgreSQL the digest (MD5) is computed by the server, so the
    vectors themselves (a kilobyte each) never leave it; elsewhere they are read and hashed."""
    texts = TextEmbedding.objects.filter(job_id=job_id).order_by("item_index")
    if connection.vendor == "postgresql":
        from django.db.models.functions import MD5

        yield from texts.annotate(digest=MD5("vector")).values_list("item_index", "digest").iterator(
            chunk_size=10_000)
        return
    for index, blob in texts.values_list("item_index", "vector").iterator(chunk_size=1000):
        yield index, hashlib.md5(bytes(blob)).hexdigest()


def _insert_new_generic(model, field_names, rows, unique_fields, marker_field) -> set[Any]:
    positions = [field_names.index(name) for name in unique_fields]
    marker_pos = field_names.index(marker_field)
    *scope_fields, key_field = unique_fields
    scope = {name: rows[0][field_names.index(name)] for name in scope_fields}
    keys = {row[positions[-1]] for row in rows}
    taken: set[Any] = set()
    key_list = list(keys)
    for start in range(0, len(key_list), 900):
        taken.update(
            model.objects.filter(**scope, **{f"{key_field}__in": key_list[start:start + 900]})
            .values_list(key_field, flat=True)
        )
    new_objects, inserted = [], set()
    for row in sorted(rows, key=lambda r: r[marker_pos]):
        key = row[positions[-1]]
        if key in taken:
            continue
        taken.add(key)
        inserted.add(row[marker_pos])
        values = zip(field_names, row, strict=True)
        new_objects.append(model(**{_attname(model, name): value for name, value in values}))
    model.objects.bulk_create(new_objects, batch_size=500)
    return inserted


def _attname(model: type[models.Model], name: str) -> str:
    return model._meta.get_field(name).attname


# --- submission payloads -----------------------------------------------------------------

def copy_payloads(rows: Sequence[tuple[int, str, bytes]]) -> None:
    """Writes (batch id, codec, data) payload rows. On PostgreSQL in binary COPY: an INSERT of
    the same bytes spent a large share of a big submission escaping and parsing them
    (docs/performance.md). Runs inside the submission's transaction, so a refused submission
    leaves no payload behind."""
    if connection.vendor != "postgresql":
        BatchPayload.objects.bulk_create([BatchPayload(batch_id=pk, codec=codec, data=data)
                                          for pk, codec, data in rows])
        return
    with connection.cursor() as cursor:
        table = _q(BatchPayload._meta.db_table)
        with cursor.cursor.copy(f"COPY {table} (batch_id, codec, data) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["bigint", "text", "bytea"])
            for row in rows:
                copy.write_row(row)


# --- planner statistics ------------------------------------------------------------------

def analyze(models_: Sequence[type[models.Model]]) -> None:
    """PostgreSQL only (a no-op elsewhere). A table filled by COPY has no statistics until
    autovacuum's analyze catches up, which can take minutes after a large load; until then the
    planner misjudges every query on it (a keyset page of stored transactions read the whole
    project). The finalizer runs it after the job's rows are committed and before its summary;
    ANALYZE samples a bounded number of rows and blocks neither reads nor writes."""
    if connection.vendor != "postgresql" or not models_:
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(_q(model._meta.db_table) for model in models_))
