"""Scores Zenith's importer on a corpus of real exports kept outside the repository.

    .venv/bin/python bench/corpus_score.py /work/corpus/files [--json out.json] [-v]

The directory holds one folder per file: the export itself, `expected.json` (the values its
upstream importer's own tests expect, with the file's country and format and the base
currency that importer is configured with), `mapping.json` (a mapping a user would write;
`{}` when none is needed) and `SOURCE.json` (repository, path, licence). Data files from
public repositories are not committed here (README.md, "Files as banks and ledgers export
them"), so the corpus lives outside the repository.

Each file is read twice, as an upload would be: with no mapping (only the project's base
currency), and with its mapping. A reading is correct when every check passes:
- rows: as many valid records as the upstream expects (when it says), none failing;
- dates (the booking date, or the value date where the upstream's source says its date is
  that: `"date_is": "value_date"`), signed amounts, currency, counterparty, for every line the upstream checks (the
  upstream's payee must appear in the counterparty or, where the bank puts it there, the
  description);
- account: every record's account, when the upstream names the statement's;
- sum: of the amounts, when the upstream checks it;
- re-upload: reading the file again gives the same ids, and no id repeats.

Zero amounts: some upstream importers drop rows whose amount is zero (ING's `0,00` lines,
Livebank's notices). Zenith keeps every row unless the mapping says `skip_zero_amounts`
(nothing is dropped silently), so when the upstream's row count is met exactly once the
zero-amount records are set aside, the lines are compared with the rest, and the result
counts them as `zero_rows_kept`; the table shows how many correct files kept such rows.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import pathlib
import sys
from decimal import Decimal, InvalidOperation

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zenith.settings")


def read(path: pathlib.Path, mapping: dict | None, base_currency: str) -> tuple[list[dict], list[str], dict]:
    """(records with the handler's normalised values, failures, what was detected)."""
    from jobs.datatypes.base import BatchContext, RecordRejected
    from jobs.datatypes.transaction import TransactionHandler
    from jobs.importing import open_import

    options = {"base_currency": base_currency} if base_currency else {}
    imported = open_import(io.BytesIO(path.read_bytes()), name=path.name, mapping=mapping or None,
                           options=options, expects_transactions=True)
    handler = TransactionHandler()
    ctx = BatchContext(job_id=None, project_id="", batch_id=0, batch_number=0, data_type="transaction",
                       options=options, attempt=1)
    rows, failures = [], []
    for index, record in enumerate(imported.dicts()):
        try:
            values = handler.validate(record, ctx)
        except RecordRejected as rejected:
            failures.append(f"row {index}: {rejected.code} {rejected.message}"[:200])
            continue
        rows.append({**dict(zip(("id", "date", "amount", "currency", "account", "counterparty", "description",
                                 "reference"), values, strict=True)), "value_date": values.value_date})
    return rows, failures, imported.detected


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, TypeError):
        return None


def check(expected: dict, rows: list[dict], failures: list[str], again: list[dict]) -> dict[str, list[str]]:
    """Problems per check (an empty list: the check passed)."""
    problems: dict[str, list[str]] = {name: [] for name in
                                      ("rows", "dates", "amounts", "currency", "account", "counterparty",
                                       "re-upload")}
    if failures:
        problems["rows"].append(f"{len(failures)} failed, e.g. {failures[0]}")
    if "rows" in expected and len(rows) != expected["rows"]:
        problems["rows"].append(f"{len(rows)} records, expected {expected['rows']}")
    if "sum" in expected and sum((r["amount"] for r in rows), Decimal(0)) != Decimal(expected["sum"]):
        problems["amounts"].append(f"sum {sum((r['amount'] for r in rows), Decimal(0))} != {expected['sum']}")
    base = expected.get("base_currency")
    # The upstream's date is the booking date unless its source says it is the value date
    # (an ofxstatement plugin that posts on the Valutadatum): then it is compared with that.
    date_is = expected.get("date_is", "date")
    for line in expected.get("lines", []):
        i = line["index"]
        if i >= len(rows):
            problems["rows"].append(f"no record {i}")
            continue
        row = rows[i]
        dated = row[date_is]
        if "date" in line and (dated.isoformat() if dated else None) != line["date"]:
            problems["dates"].append(f"{i}: {date_is} {dated} != {line['date']}")
        if "amount" in line and row["amount"] != _decimal(line["amount"]):
            problems["amounts"].append(f"{i}: {row['amount']} != {line['amount']}")
        currency = line.get("currency") or base
        if currency and row["currency"] != currency and not (currency == "RUB" and row["currency"] == "RUR"):
            problems["currency"].append(f"{i}: {row['currency']} != {currency}")
        if line.get("payee"):
            text = f"{row['counterparty']} {row['description']}".lower()
            if " ".join(line["payee"].lower().split()) not in " ".join(text.split()):
                problems["counterparty"].append(f"{i}: {line['payee']!r} not in {row['counterparty']!r}")
    if expected.get("account"):
        wrong = [r["account"] for r in rows if r["account"].replace(" ", "") != expected["account"].replace(" ", "")
                 and expected["account"] not in r["account"]]
        if wrong:
            problems["account"].append(f"{len(wrong)} records with account {wrong[0]!r} != {expected['account']!r}")
    ids = [r["id"] for r in rows]
    if ids != [r["id"] for r in again]:
        problems["re-upload"].append("a second reading gives other ids")
    if len(set(ids)) != len(ids):
        problems["re-upload"].append(f"{len(ids) - len(set(ids))} ids repeat")
    return problems


def score_one(folder: pathlib.Path, with_mapping: bool) -> dict:
    expected = json.loads((folder / "expected.json").read_text())
    mapping = json.loads((folder / "mapping.json").read_text()) if with_mapping else None
    path = folder / expected["file"]
    base = expected.get("base_currency", "")
    try:
        rows, failures, detected = read(path, mapping, base)
        again, _, _ = read(path, mapping, base)
    except Exception as exc:  # a refusal: the file is not imported
        return {"ok": False, "refused": f"{type(exc).__name__}: {exc}"[:300], "problems": {}}
    zero_rows_kept = 0
    nonzero = [r for r in rows if r["amount"] != 0]
    if "rows" in expected and len(rows) != expected["rows"] and len(nonzero) == expected["rows"]:
        zero_rows_kept = len(rows) - len(nonzero)
        rows, again = nonzero, [r for r in again if r["amount"] != 0]
    problems = check(expected, rows, failures, again)
    return {"ok": not any(problems.values()), "problems": {k: v for k, v in problems.items() if v},
            "records": len(rows), "failed": len(failures), "format": detected.get("format"),
            "zero_rows_kept": zero_rows_kept}


def main() -> int:
    import django

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=pathlib.Path)
    parser.add_argument("--json", type=pathlib.Path)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    django.setup()
    results = []
    for folder in sorted(p for p in args.directory.iterdir() if (p / "expected.json").exists()):
        expected = json.loads((folder / "expected.json").read_text())
        plain = score_one(folder, with_mapping=False)
        mapped = score_one(folder, with_mapping=True)
        results.append({"id": folder.name, "country": expected["country"], "format": expected["format"],
                        "no_mapping": plain, "with_mapping": mapped})
    by: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for r in results:
        for key in (("format", r["format"]), ("country", r["country"]), ("all", "all")):
            by[key][0] += 1
            by[key][1] += r["no_mapping"]["ok"]
            by[key][2] += r["with_mapping"]["ok"]
            by[key][3] += bool(r["no_mapping"]["ok"] and r["no_mapping"].get("zero_rows_kept"))
    print(f"{'':8} {'':6} {'files':>5} {'no mapping':>12} {'with mapping':>13}  no mapping, zero rows kept")
    for (kind, name), (n, plain, mapped, zeros) in sorted(by.items(), key=lambda item: (item[0][0] != "format",
                                                                                        item[0][0], item[0][1])):
        print(f"{kind:8} {name:6} {n:5} {plain:5} ({plain * 100 // n:3}%) {mapped:5} ({mapped * 100 // n:3}%)"
              f"  {zeros}")
    for r in results:
        for mode in ("no_mapping", "with_mapping"):
            outcome = r[mode]
            if not outcome["ok"] and (args.verbose or mode == "with_mapping"):
                print(f"FAIL {r['id']} ({mode}): {outcome.get('refused') or outcome['problems']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
