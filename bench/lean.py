"""The lean yardstick: a no-queue loop written for the bench, not Zenith's code.

What it measures: how fast this machine can take a file of transaction records to stored
rows when nothing stands in between: read JSONL or CSV, normalise the fields Zenith's
`transaction` type normalises (ISO date, decimal amount, upper-case 3-letter ISO 4217
currency, trimmed and whitespace-collapsed text, the same length limits), reject bad records
with a code and a reason (stored as failure rows), COPY each batch of 1,000 valid rows into a
temp table and move it with one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` into a table of
the shape of Zenith's `jobs_transaction` (columns, types, unique key, indexes, the project
foreign key), keep job totals (processed, failed, duplicates, stored) in the same commit. It
runs in 1 or N processes, each taking a byte range of the file, and reports items/s, CPU
seconds of every process involved (its own and its PostgreSQL backends') and peak RSS.

Why it is written here and imports nothing from `jobs` or `zenith`: bench/run.py's
"reference" runs Zenith's own handler in a loop, so it inherits the costs it should expose.
This loop is what a competent engineer would write for the job in an afternoon; Zenith's
figures are worth reading against it. It accepts ISO dates and plain decimal amounts only
(what bench files and most exports carry); Zenith reads more formats.

    .venv/bin/python bench/lean.py bench/out/transactions-20000.jsonl --processes 2

Byte-range splitting assumes one record per line (no newline inside a quoted CSV field).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import multiprocessing
import os
import re
import resource
import sys
import threading
import time
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psutil
import psycopg

DSN = os.environ.get("LEAN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/zenith_lean")
BATCH = 1000
MAX_ABS_AMOUNT = Decimal("1e15")
FOUR_PLACES = Decimal("0.0001")
ISO_4217 = frozenset("""
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
    KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN
    NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL
    SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES
    VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL
""".split())

# --- normalisation -----------------------------------------------------------------------------

# Plain decimals only (digits on one side of the point at least), and ASCII digits: what COPY accepts.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]|$)", re.ASCII)
_PLAIN_NUMBER = re.compile(r"\s*[+-]?(?=\.?\d)(\d*)(?:\.(\d*))?\s*$", re.ASCII)


class Rejected(Exception):
    def __init__(self, code: str, field: str, message: str):
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


def _text(record: dict, field: str, limit: int) -> str:
    value = record.get(field)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise Rejected(f"invalid_{field}", field, f"{field} must be text")
    return " ".join(str(value).split())[:limit]


def normalise(record: dict) -> tuple[str, str, str, str, str, str, str, str]:
    """(id, ISO date, amount, currency, account, counterparty, description, reference), all
    text ready for COPY, or `Rejected` with a code naming the field."""
    if not isinstance(record, dict):
        raise Rejected("invalid_record", "", "a record must be an object")
    key = record.get("id")
    if isinstance(key, (dict, list)):
        raise Rejected("invalid_id", "id", "id must be text")
    key = "" if key is None else str(key).strip()
    if not key:
        raise Rejected("missing_id", "id", "id is required")
    if len(key) > 128:
        raise Rejected("invalid_id", "id", "id is longer than 128 characters")
    value = record.get("date")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Rejected("missing_date", "date", "date is required")
    text = value.strip() if isinstance(value, str) else ""
    if not _ISO_DATE.match(text):
        raise Rejected("invalid_date", "date", f"date {value!r} is not an ISO date (YYYY-MM-DD)")
    date = text[:10]
    try:
        dt.date.fromisoformat(date)  # a real calendar day
    except ValueError:
        raise Rejected("invalid_date", "date", f"date {value!r} is not a valid calendar date") from None
    value = record.get("amount")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Rejected("missing_amount", "amount", "amount is required")
    try:
        if isinstance(value, str):  # plain decimal text goes to COPY as it is (PostgreSQL parses it)
            match = _PLAIN_NUMBER.match(value)
            if not match:
                raise InvalidOperation
            whole, fraction = match.group(1).lstrip("0"), match.group(2) or ""
            if len(whole) > 15:
                raise InvalidOperation
            if len(fraction) <= 4:
                amount = value.strip()
            else:
                amount = str(Decimal(value).quantize(FOUR_PLACES))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = Decimal(repr(value))
            if not number.is_finite() or abs(number) >= MAX_ABS_AMOUNT:
                raise InvalidOperation
            amount = str(number.quantize(FOUR_PLACES) if number.as_tuple().exponent < -4 else number)
        else:
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        raise Rejected("invalid_amount", "amount", f"amount {value!r} is not a number") from None
    value = record.get("currency")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Rejected("missing_currency", "currency", "currency is required")
    code = value.strip().upper() if isinstance(value, str) else ""
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise Rejected("invalid_currency", "currency", f"currency {value!r} is not a three-letter code")
    if code not in ISO_4217:
        raise Rejected("unknown_currency", "currency", f"currency {value!r} is not an ISO 4217 currency")
    return (key, date, amount, code, _text(record, "account", 128),
            _text(record, "counterparty", 255), _text(record, "description", 2000), _text(record, "reference", 128))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def split_batch(records: list[tuple[int, dict]], valid_keys: list | None = None) -> tuple[list[str], list[str]]:
    """COPY text lines of the valid rows and of the failures (item index, id, code, field,
    reason); the valid rows' ids are appended to `valid_keys` when given."""
    rows, failure_lines = [], []
    for index, record in records:
        try:
            fields = normalise(record)
        except Rejected as error:
            item_key = str(record.get("id") or "")[:255] if isinstance(record, dict) else ""
            failure_lines.append("\t".join((str(index), item_key.translate(_COPY_ESCAPES), error.code, error.field,
                                            error.message.translate(_COPY_ESCAPES))) + "\n")
            continue
        if valid_keys is not None:
            valid_keys.append(fields[0])
        rows.append("\t".join([fields[0].translate(_COPY_ESCAPES), fields[1], fields[2], fields[3],
                               *(f.replace("\\", "\\\\") for f in fields[4:]), str(index)]) + "\n")
    return rows, failure_lines


# --- the table (jobs_transaction's shape: jobs/migrations 0001-0003, as `\d jobs_transaction`) ----

SCHEMA = """
CREATE TABLE IF NOT EXISTS lean_project (id varchar(64) PRIMARY KEY, name varchar(200) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS lean_job (id uuid PRIMARY KEY, project_id varchar(64) NOT NULL REFERENCES lean_project(id)
    DEFERRABLE INITIALLY DEFERRED, runner text NOT NULL, status varchar(16) NOT NULL, total_items integer,
    total_batches integer, batch_config jsonb, processed bigint NOT NULL DEFAULT 0, failed bigint NOT NULL DEFAULT 0,
    duplicates bigint NOT NULL DEFAULT 0, stored bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(), completed_at timestamptz);
CREATE TABLE IF NOT EXISTS lean_job_part (job_id uuid NOT NULL REFERENCES lean_job(id) ON DELETE CASCADE,
    part integer NOT NULL, processed bigint NOT NULL DEFAULT 0, failed bigint NOT NULL DEFAULT 0,
    duplicates bigint NOT NULL DEFAULT 0, stored bigint NOT NULL DEFAULT 0, PRIMARY KEY (job_id, part));
CREATE TABLE IF NOT EXISTS lean_transaction (
    id bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, external_id varchar(128) NOT NULL,
    date date NOT NULL, amount numeric(20, 4) NOT NULL, currency varchar(3) NOT NULL, account varchar(128) NOT NULL,
    counterparty varchar(255) NOT NULL, description text NOT NULL, reference varchar(128) NOT NULL,
    item_index integer NULL CHECK (item_index >= 0), created_at timestamptz NOT NULL, job_id uuid NULL,
    project_id varchar(64) NOT NULL REFERENCES lean_project(id) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT lean_transaction_project_external_id UNIQUE (project_id, external_id));
CREATE INDEX IF NOT EXISTS lean_transaction_day_amount ON lean_transaction (project_id, date, amount);
CREATE INDEX IF NOT EXISTS lean_transaction_project_reference ON lean_transaction (project_id, reference);
CREATE INDEX IF NOT EXISTS lean_transaction_job_item ON lean_transaction (job_id, item_index);
CREATE TABLE IF NOT EXISTS lean_failure (id bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
    job_id uuid NOT NULL REFERENCES lean_job(id) DEFERRABLE INITIALLY DEFERRED, item_index integer NOT NULL,
    item_key varchar(255) NOT NULL, error_code varchar(64) NOT NULL, field varchar(64) NOT NULL, message text NOT NULL);
CREATE INDEX IF NOT EXISTS lean_failure_job_item ON lean_failure (job_id, item_index);
"""
STAGE = """CREATE TEMP TABLE lean_stage (external_id varchar(128), date date, amount numeric(20, 4),
    currency varchar(3), account varchar(128), counterparty varchar(255), description text, reference varchar(128),
    item_index integer) ON COMMIT DELETE ROWS"""
MOVE = """INSERT INTO lean_transaction (project_id, job_id, created_at, external_id, date, amount, currency, account,
    counterparty, description, reference, item_index)
    SELECT %s, %s, now(), external_id, date, amount, currency, account, counterparty, description, reference, item_index
    FROM lean_stage ON CONFLICT (project_id, external_id) DO NOTHING"""


def ensure_database(dsn: str = DSN) -> None:
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    if not name.startswith("zenith_lean"):
        raise SystemExit(f"refusing database {name!r}: the lean yardstick's database name must start with zenith_lean")
    with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, dbname="postgres"), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)


def reset(dsn: str = DSN) -> None:
    """Empty tables and a checkpoint before a run, so no run pays for the one before it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE lean_transaction, lean_failure, lean_job_part, lean_job, lean_project")
        conn.execute("CHECKPOINT")


def new_job(dsn: str, project_id: str, runner: str, **fields) -> str:
    job_id = str(uuid.uuid4())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO lean_project (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (project_id, runner))
        conn.execute("INSERT INTO lean_job (id, project_id, runner, status, total_items, total_batches, batch_config) "
                     "VALUES (%s, %s, %s, 'running', %s, %s, %s)",
                     (job_id, project_id, runner, fields.get("total_items"), fields.get("total_batches"),
                      json.dumps(fields.get("batch_config") or {})))
    return job_id


class Store:
    """One connection; `write` stores one batch in one commit and returns the rows inserted."""

    def __init__(self, dsn: str = DSN):
        self.conn = psycopg.connect(dsn, application_name="zenith_lean")
        self.conn.execute(STAGE)
        self.conn.commit()
        self.backend_pid = self.conn.info.backend_pid

    def write(self, job_id: str, project_id: str, rows: list[str], failure_lines: list[str],
              part: int | None = None) -> int:
        cur = self.conn.cursor()
        if rows:
            with cur.copy("COPY lean_stage FROM STDIN") as copy:
                copy.write("".join(rows))
            cur.execute(MOVE, (project_id, job_id))
        inserted = cur.rowcount if rows else 0
        if failure_lines:
            prefix = job_id + "\t"
            with cur.copy("COPY lean_failure (job_id, item_index, item_key, error_code, field, message) "
                          "FROM STDIN") as copy:
                copy.write("".join(prefix + line for line in failure_lines))
        if part is not None:  # the job totals, exact at every commit (one row per process: none waits on another)
            cur.execute("UPDATE lean_job_part SET processed = processed + %s, failed = failed + %s, "
                        "duplicates = duplicates + %s, stored = stored + %s WHERE job_id = %s AND part = %s",
                        (len(rows), len(failure_lines), len(rows) - inserted, inserted, job_id, part))
        self.conn.commit()
        return inserted

    def backend_cpu(self) -> float:
        return cpu_seconds(psutil.Process(self.backend_pid))

    def close(self) -> None:
        self.conn.close()


# --- reading a byte range ------------------------------------------------------------------------

def ranges(path: Path, parts: int) -> tuple[list[str] | None, list[tuple[int, int]]]:
    """The CSV header (None for JSONL) and `parts` byte ranges of the body; a line belongs to
    the range its first byte is in."""
    with open(path, "rb") as f:
        header_line = f.readline() if path.suffix.lower() == ".csv" else b""
    header = next(csv.reader([header_line.decode("utf-8-sig")])) if header_line else None
    start, size = len(header_line), path.stat().st_size
    step = -(-(size - start) // parts)
    return header, [(start + i * step, min(size, start + (i + 1) * step)) for i in range(parts)]


def read_range(path: Path, header: list[str] | None, start: int, end: int, body_start: int):
    """Yields lists of (item index, record) of up to BATCH records from the lines starting in [start, end)."""
    with open(path, "rb") as f:
        if start > body_start:
            f.seek(start - 1)
            start += len(f.readline()) - 1  # finish the line the range starts inside of
        f.seek(body_start)
        index, remaining = 0, start - body_start
        while remaining > 0:  # the item index of the first line: lines before it (one pass at C speed)
            chunk = f.read(min(remaining, 1 << 22))
            index, remaining = index + chunk.count(b"\n"), remaining - len(chunk)
        pos, lines = start, []
        while pos < end:
            line = f.readline()
            if not line:
                break
            pos += len(line)
            lines.append(line)
            if len(lines) == BATCH:
                yield _parse(lines, header, index)
                index, lines = index + len(lines), []
        if lines:
            yield _parse(lines, header, index)


def _parse(lines: list[bytes], header: list[str] | None, first: int) -> list[tuple[int, dict]]:
    out = []
    if header is None:
        for i, line in enumerate(lines, first):
            if line.strip():
                try:
                    out.append((i, json.loads(line)))
                except ValueError:
                    out.append((i, None))  # rejected by normalise as invalid_record
        return out
    for i, row in enumerate(csv.reader(line.decode("utf-8", "replace") for line in lines), first):
        if row:
            out.append((i, dict(zip(header, row, strict=False))))
    return out


# --- measuring ----------------------------------------------------------------------------------

def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


class PgCpu(threading.Thread):
    """CPU seconds of the PostgreSQL backends serving one database (psutil on the postmaster's
    children, told apart by their process title), sampled every 0.2 s; a backend that reports
    its own last figure before it closes (`report`) is counted exactly. The server's shared
    background processes (WAL writer, checkpointer, ...) are summed apart: other users'
    databases on the same server move them too."""

    BACKGROUND = ("checkpointer", "background writer", "walwriter", "autovacuum", "logical replication")

    def __init__(self, dsn: str = DSN):
        super().__init__(daemon=True)
        self.dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        with psycopg.connect(dsn) as conn:
            self.postmaster = psutil.Process(conn.info.backend_pid).parent()
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.background_first: dict[int, float] = {}
        self.background_last: dict[int, float] = {}
        self.halt = threading.Event()
        self.sample(initial=True)

    def sample(self, initial: bool = False) -> None:
        for proc in self.postmaster.children():
            try:
                title, cpu = " ".join(part for part in proc.cmdline() if part), cpu_seconds(proc)
            except psutil.Error:
                continue
            if any(name in title for name in self.BACKGROUND):
                if initial:
                    self.background_first[proc.pid] = cpu
                self.background_last[proc.pid] = cpu
            elif f" {self.dbname} " in f" {title} ":
                if initial:
                    self.first[proc.pid] = cpu
                self.last[proc.pid] = max(cpu, self.last.get(proc.pid, 0.0))

    def report(self, pid: int, cpu: float) -> None:
        self.last[pid] = max(cpu, self.last.get(pid, 0.0))

    def run(self) -> None:
        while not self.halt.wait(0.2):
            self.sample()

    def stop(self) -> dict:
        self.halt.set()
        if self.is_alive():
            self.join()
        self.sample()
        backends = sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())
        background = sum(cpu - self.background_first.get(pid, 0.0) for pid, cpu in self.background_last.items())
        return {"pg_backend_cpu_s": round(backends, 2), "pg_background_cpu_s": round(background, 2)}


# --- the loop -------------------------------------------------------------------------------------

def _part(dsn: str, path: str, header, start: int, end: int, body_start: int, job_id: str, project_id: str,
          part: int, queue) -> None:
    store = Store(dsn)
    totals = {"items": 0, "processed": 0, "failed": 0, "stored": 0}
    for records in read_range(Path(path), header, start, end, body_start):
        rows, failure_lines = split_batch(records)
        inserted = store.write(job_id, project_id, rows, failure_lines, part)
        totals["items"] += len(records)
        totals["processed"] += len(rows)
        totals["failed"] += len(failure_lines)
        totals["stored"] += inserted
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put({**totals, "backend_pid": store.backend_pid, "backend_cpu_s": store.backend_cpu(),
               "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024})
    store.close()


def run(path: Path, processes: int = 1, project_id: str | None = None, dsn: str = DSN) -> dict:
    """Stores `path` with `processes` processes; returns the figures and the job's totals."""
    project_id = project_id or f"lean-{processes}p-{uuid.uuid4().hex[:6]}"
    job_id = new_job(dsn, project_id, f"lean-{processes}p", batch_config={"size": BATCH, "processes": processes})
    header, parts = ranges(path, processes)
    body_start = parts[0][0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for part in range(processes):
            conn.execute("INSERT INTO lean_job_part (job_id, part) VALUES (%s, %s)", (job_id, part))
    pg = PgCpu(dsn)  # its first sample now, its thread only after the fork (no lock held mid-fork)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    started = time.perf_counter()
    procs = [context.Process(target=_part, args=(dsn, str(path), header, start, end, body_start, job_id, project_id,
                                                  part, queue)) for part, (start, end) in enumerate(parts)]
    for proc in procs:
        proc.start()
    pg.start()
    results = []
    while len(results) < len(procs):
        try:
            results.append(queue.get(timeout=1))
        except Exception:  # queue.Empty: fail loudly if a process died instead of waiting forever
            if any(proc.exitcode not in (None, 0) for proc in procs):
                raise RuntimeError(f"a lean process failed: exit codes {[p.exitcode for p in procs]}") from None
    for proc in procs:
        proc.join()
    seconds = time.perf_counter() - started
    for result in results:
        pg.report(result["backend_pid"], result["backend_cpu_s"])
    pg_cpu = pg.stop()
    with psycopg.connect(dsn, autocommit=True) as conn:
        totals = conn.execute(
            "UPDATE lean_job j SET status = 'completed', completed_at = now(), total_items = p.processed + p.failed, "
            "processed = p.processed, failed = p.failed, duplicates = p.duplicates, stored = p.stored "
            "FROM (SELECT sum(processed) processed, sum(failed) failed, sum(duplicates) duplicates, sum(stored) stored "
            "FROM lean_job_part WHERE job_id = %s) p WHERE j.id = %s "
            "RETURNING j.processed, j.failed, j.duplicates, j.stored", (job_id, job_id)).fetchone()
    items = sum(r["items"] for r in results)
    own_cpu = sum(r["cpu_s"] for r in results)  # the parent only forks, waits and samples: not counted
    cpu = own_cpu + pg_cpu["pg_backend_cpu_s"]
    return {
        "runner": f"lean {processes}p", "processes": processes, "file": str(path), "project_id": project_id,
        "job_id": job_id, "items": items, "seconds": round(seconds, 3), "items_per_second": round(items / seconds),
        "job_totals": dict(zip(("processed", "failed", "duplicates", "stored"), map(int, totals), strict=True)),
        "cpu_s": round(cpu, 2), "python_cpu_s": round(own_cpu, 2), **pg_cpu,
        "cpu_s_per_1m": round(cpu * 1e6 / items, 1) if items else None,
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results), 1),
        "peak_rss_mb_sum": round(sum(r["peak_rss_mb"] for r in results), 1),
    }


def counts(project_id: str, job_id: str, dsn: str = DSN) -> dict:
    """What is in the database: the project's stored rows and the job's failure rows."""
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM lean_transaction WHERE project_id = %s",
                              (project_id,)).fetchone()[0]
        failures = conn.execute("SELECT count(*) FROM lean_failure WHERE job_id = %s", (job_id,)).fetchone()[0]
    return {"rows_in_table": stored, "failure_rows": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="A .jsonl or .csv file of transaction records.")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--project", help="Project id (default: a new one). Reuse one to see ON CONFLICT at work.")
    parser.add_argument("--reset", action="store_true", help="Empty the lean tables first.")
    args = parser.parse_args()
    ensure_database()
    if args.reset:
        reset()
    result = run(args.file, args.processes, args.project)
    result.update(counts(result["project_id"], result["job_id"]))
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
