"""Synthetic transaction data for demos, benchmarks and tests: deterministic for a seed."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path

VENDORS = ["Acme Supplies Ltd", "Northwind Traders", "Globex GmbH", "Initech LLC", "Umbrella S.A.",
           "Stark Industries", "Wayne Enterprises", "Hooli Inc", "Vandelay Import Export", "Soylent Corp",
           "Tyrell Corporation", "Cyberdyne Systems", "Wonka Industries", "Oscorp", "Gringotts Bank"]
CURRENCIES = ["EUR", "EUR", "EUR", "USD", "USD", "GBP", "CHF"]
FIELDS = ["id", "date", "amount", "currency", "account", "counterparty", "description", "reference"]


def transactions(count: int, seed: int = 1, invalid_rate: float = 0.01, start: int = 0) -> Iterator[dict]:
    """`count` transaction records; about `invalid_rate` of them have a bad field."""
    rng = random.Random(seed)
    base = dt.date(2025, 1, 1)
    for i in range(start, start + count):
        record = {
            "id": f"TX{seed:03d}-{i:08d}",
            "date": (base + dt.timedelta(days=rng.randrange(365))).isoformat(),
            "amount": f"{rng.lognormvariate(5, 1.4):.2f}" if rng.random() < 0.9 else f"-{rng.uniform(1, 900):.2f}",
            "currency": rng.choice(CURRENCIES),
            "account": f"ACC-{rng.randrange(1, 60):04d}",
            "counterparty": rng.choice(VENDORS),
            "description": f"Invoice {rng.randrange(10000, 99999)} {rng.choice(['services', 'goods', 'fees', 'rent'])}",
            "reference": f"REF{rng.randrange(10**6, 10**7)}" if rng.random() < 0.6 else "",
        }
        if rng.random() < invalid_rate:
            broken = rng.choice(["amount", "date", "currency", "id"])
            record[broken] = {"amount": "n/a", "date": "2025-02-30", "currency": "EURO", "id": ""}[broken]
        yield record


def write(path: Path, records: Iterator[dict], fmt: str | None = None) -> int:
    """Writes records as csv, json or jsonl (gzip when the name ends in .gz). Returns the count."""
    name = path.name.lower().removesuffix(".gz")
    fmt = fmt or ("csv" if name.endswith(".csv") else "json" if name.endswith(".json") else "jsonl")
    opener = gzip.open if path.name.endswith(".gz") else open
    count = 0
    with opener(path, "wt", encoding="utf-8", newline="") as out:
        if fmt == "csv":
            writer = csv.DictWriter(out, fieldnames=FIELDS, extrasaction="ignore")
            writer.writeheader()
            for record in records:
                writer.writerow(record)
                count += 1
        elif fmt == "json":
            out.write("[")
            for record in records:
                out.write(("," if count else "") + json.dumps(record))
                count += 1
            out.write("]")
        else:
            for record in records:
                out.write(json.dumps(record) + "\n")
                count += 1
    return count
