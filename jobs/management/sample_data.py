"""Synthetic data for demos, benchmarks and tests: deterministic for a seed.

`transactions` is the plain generator of the demo and the benchmarks. The forensic samples
below come with planted anomalies and a truth file saying what a correct analysis finds, so
tests (and users evaluating Zenith) can measure recall and precision per rule:

- `ledger`: a year of payments across accounts with their own typical amounts, on business
  days, with planted red flags (round amounts, just-below-threshold amounts, weekend and
  holiday postings, duplicate payments, per-account outliers) and, optionally, invalid
  records (with the error code each must get), messy-but-valid formats and repeated ids.
- `reconciliation_sample`: a clean ledger and the bank statement of its payments: value
  dates a few days late, bank-style counterparty names, some bank charges deducted,
  bank-only lines, duplicated lines and genuinely ambiguous pairs.
- `transaction_sample`: the ledger with planted red flags and ingestion traps, and the bank
  statement of what an ingestion of it stores (what `generate_sample --type transaction`
  writes).
- `entity_names`: entity names with the variants real data has (case, legal suffixes,
  punctuation, accents, typos, abbreviations).
- `descriptions`: transaction descriptions with planted near-duplicates.

The background is generated not to trip the deterministic rules by accident (business days
only; no round or just-below-threshold amounts); the statistical ones (outliers, duplicates,
Benford) see the data as it comes.

The truth never comes from the code it judges: business days are weekdays that are not on a
hand-written list of TARGET2 closing days (`TARGET2_CLOSING_DAYS`, not
`jobs.forensics.calendar`), and which payments are duplicates is the generator's own
bookkeeping of the vendor it chose (not `normalize_name`; planted copies even spell the
vendor differently, as a second data entry would).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gzip
import itertools
import json
import math
import random
import unicodedata
from collections.abc import Iterable, Iterator
from decimal import Decimal
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


def write(path: Path, records: Iterable[dict], fmt: str | None = None, fields: list[str] | None = None) -> int:
    """Writes records as csv, json or jsonl (gzip when the name ends in .gz). Returns the count.
    CSV columns are `fields` (default: the transaction fields)."""
    name = path.name.lower().removesuffix(".gz")
    fmt = fmt or ("csv" if name.endswith(".csv") else "json" if name.endswith(".json") else "jsonl")
    opener = gzip.open if path.name.endswith(".gz") else open
    count = 0
    with opener(path, "wt", encoding="utf-8", newline="") as out:
        if fmt == "csv":
            writer = csv.DictWriter(out, fieldnames=fields or FIELDS, extrasaction="ignore")
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



# --- forensic samples --------------------------------------------------------------------------

SAMPLE_TYPES = ("transaction", "analysis", "reconciliation", "entity", "embedding")
STATEMENT_FIELDS = ["id", "date", "amount", "currency", "counterparty", "description", "reference"]
ENTITY_FIELDS = ["id", "name", "type", "country"]
EMBEDDING_FIELDS = ["id", "text"]
FIELDS_BY_ROLE = {"ledger": FIELDS, "transactions": FIELDS, "statement": STATEMENT_FIELDS,
                  "entities": ENTITY_FIELDS, "texts": EMBEDDING_FIELDS}

_NAME_WORDS = ["Northwind", "Globex", "Initech", "Umbrella", "Acme", "Hooli", "Vandelay", "Soylent", "Tyrell",
               "Cyberdyne", "Wonka", "Oscorp", "Gringotts", "Duff", "Aperture", "Monarch", "Virtucon", "Nakatomi",
               "Bluth", "Prestige", "Massive", "Sterling", "Wernham", "Kramerica", "Zorin", "Bridgeport",
               "Cheyenne", "Lacuna", "Rekall", "Weyland", "Yoyodyne", "Gekko", "Spacely", "Cogswell", "Ollivander",
               "Brawndo", "Pendant", "Dinoco", "Pizza Planet", "Los Pollos"]
_INDUSTRIES = ["Supplies", "Logistics", "Consulting", "Software", "Facilities", "Catering", "Security", "Printing",
               "Engineering", "Travel", "Media", "Energy", "Textiles", "Analytics", "Freight"]
_SUFFIXES = ["Ltd", "LLC", "GmbH", "S.A.", "Inc", "plc", "B.V.", "AG", "SARL", "Limited", ""]
_ITEMS = ["office cleaning", "IT support", "legal advice", "courier services", "printer toner", "catering",
          "software licences", "security patrol", "travel booking", "audit fees", "marketing campaign",
          "freight charges", "server hosting", "staff training", "facility rent", "electricity",
          "insurance premium", "recruitment fees", "translation services", "equipment lease",
          "market research", "data backup", "furniture", "telephone charges", "waste disposal",
          "temporary staff", "maintenance contract", "advertising space", "conference tickets", "stationery"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]

THRESHOLD = Decimal(10000)
THRESHOLD_MARGIN = Decimal("0.05")
ROUND_UNIT = Decimal(1000)
MAX_PLANTED = 1_000  # planted red flags per rule (ledger)
PLACE_ATTEMPTS = 10_000  # draws of an amount for one payment before the generator gives up
DUPLICATE_WINDOW_DAYS = 7


# TARGET2 closing days of the sample years, written out from the ECB's published TARGET2
# calendar (New Year, Good Friday, Easter Monday, 1 May, 25 and 26 December), not computed by
# jobs.forensics.calendar: a calendar bug (a wrong Easter, a forgotten day) must fail the tests,
# not shape the truth they are scored against.
TARGET2_CLOSING_DAYS = {
    dt.date(2024, 1, 1): "New Year's Day", dt.date(2024, 3, 29): "Good Friday",
    dt.date(2024, 4, 1): "Easter Monday", dt.date(2024, 5, 1): "Labour Day",
    dt.date(2024, 12, 25): "Christmas Day", dt.date(2024, 12, 26): "Boxing Day",
    dt.date(2025, 1, 1): "New Year's Day", dt.date(2025, 4, 18): "Good Friday",
    dt.date(2025, 4, 21): "Easter Monday", dt.date(2025, 5, 1): "Labour Day",
    dt.date(2025, 12, 25): "Christmas Day", dt.date(2025, 12, 26): "Boxing Day",
    dt.date(2026, 1, 1): "New Year's Day", dt.date(2026, 4, 3): "Good Friday",
    dt.date(2026, 4, 6): "Easter Monday", dt.date(2026, 5, 1): "Labour Day",
    dt.date(2026, 12, 25): "Christmas Day", dt.date(2026, 12, 26): "Boxing Day",
}
SAMPLE_YEARS = (2024, 2025, 2026)


def _is_business_day(day: dt.date) -> bool:
    if day.year not in SAMPLE_YEARS:
        raise ValueError(f"no TARGET2 closing days listed for {day.year}")
    return day.weekday() < 5 and day not in TARGET2_CLOSING_DAYS


def _spelling_variant(name: str, rng: random.Random) -> str:
    """The same vendor as another clerk might type it: case, a legal suffix dropped or
    punctuated. (What is planted is decided here; whether Zenith sees through it is tested.)"""
    words = name.split()
    suffixed = len(words) > 2 and words[-1] in _SUFFIXES  # a legal suffix this generator appended
    style = rng.randrange(4)
    if style == 0:
        return name.upper()
    if style == 1 and suffixed:
        return " ".join(words[:-1])
    if style == 2 and suffixed:
        return f"{' '.join(words[:-1])}, {words[-1]}"
    return name.lower()


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def _flags_by_construction(amount: Decimal) -> bool:
    """Would the deterministic amount rules fire (with their default options)?"""
    value = abs(amount)
    round_ = value >= ROUND_UNIT and value % ROUND_UNIT == 0
    below = THRESHOLD * (1 - THRESHOLD_MARGIN) <= value < THRESHOLD
    return round_ or below


@dataclasses.dataclass
class _Account:
    code: str
    currency: str
    scale: float
    vendors: list[str]


class _World:
    """Vendors and accounts of one synthetic company (deterministic for a seed)."""

    def __init__(self, rng: random.Random, accounts: int = 20, year: int = 2025):
        self.rng = rng
        self.year = year
        words = rng.sample(_NAME_WORDS, len(_NAME_WORDS))
        self.vendors = [f"{word} {rng.choice(_INDUSTRIES)} {rng.choice(_SUFFIXES)}".strip() for word in words]
        # Typical amounts spread log-uniformly from about 25 to 20,000 across accounts, each
        # account's postings lognormal around its own typical amount.
        scales = [10 ** (1.4 + 2.9 * i / (accounts - 1)) for i in range(accounts)]
        rng.shuffle(scales)
        self.accounts = [
            _Account(f"ACC-{1001 + i}", rng.choice(["EUR", "EUR", "EUR", "USD", "USD", "GBP"]), scales[i],
                     rng.sample(self.vendors, 3))
            for i in range(accounts)
        ]
        start = dt.date(year, 1, 1)
        days = [start + dt.timedelta(days=n) for n in range(365)]
        self.business_days = [d for d in days if _is_business_day(d)]
        self.weekend_days = [d for d in days if d.weekday() >= 5]
        # Closing days that fall on a weekday: a posting there is flagged only if the holiday
        # calendar is right.
        self.holidays = [d for d in days if d in TARGET2_CLOSING_DAYS and d.weekday() < 5]

    def normal_amount(self, account: _Account) -> Decimal:
        while True:
            amount = _money(account.scale * math.exp(self.rng.gauss(0, 0.5)))
            if amount > 0 and not _flags_by_construction(amount):
                return amount

    def description(self, vendor: str) -> str:
        return f"{self.rng.choice(_ITEMS).capitalize()} {self.rng.choice(_MONTHS)} - {vendor.split()[0]}"


def ledger(count: int, seed: int = 1, *, anomalies: bool = True, invalid: bool = False,
           anomaly_rate: float = 0.01) -> tuple[list[dict], dict]:
    """A ledger of about `count` payments and its truth.

    With `anomalies`, about `anomaly_rate` of the records per rule are planted red flags
    (at least 5 per rule, at most MAX_PLANTED: a round amount must not repeat for one
    counterparty within the duplicate window, and a company's round amounts are few, so past
    a few thousand there is no free place left for one). With `invalid`, records with one
    bad field each (truth: the error code), valid records in messy formats (truth: the
    normalised values) and repeated ids are mixed in. Truth keys: `rules` (rule -> flagged
    ids), `duplicate_pairs` ([earlier id, copy id]), `invalid` (item index -> code),
    `normalised` (id -> {date, amount}), `repeated_ids` (item indexes of rows whose id
    appeared before).
    """
    rng = random.Random(seed)
    world = _World(rng)
    planted = min(MAX_PLANTED, max(5, round(count * anomaly_rate))) if anomalies else 0
    background = count - 5 * planted
    rows: list[dict] = []
    references = rng.sample(range(10**6, 10**7), count + 10)

    def make(account: _Account, date: dt.date, amount: Decimal, kind: str = "") -> dict:
        vendor = rng.choice(account.vendors)
        return {"date": date, "amount": amount, "currency": account.currency, "account": account.code,
                "counterparty": vendor, "description": world.description(vendor),
                "reference": f"INV-{references[len(rows)]}" if rng.random() < 0.6 else "", "_kind": kind}

    # No two payments to one counterparty of one amount within the duplicate window unless
    # planted as a duplicate: the rule is deterministic, so accidental hits would be true
    # findings the truth file does not list.
    # Keyed by the vendor as chosen (vendors are distinct companies by construction), never by
    # Zenith's name normaliser.
    paid: dict[tuple, list[dt.date]] = {}
    window = dt.timedelta(days=DUPLICATE_WINDOW_DAYS)

    def free(row: dict) -> bool:
        dates = paid.get((row["counterparty"], row["currency"], row["amount"]), [])
        return all(abs(row["date"] - other) > window for other in dates)

    def add(row: dict) -> None:
        paid.setdefault((row["counterparty"], row["currency"], row["amount"]), []).append(row["date"])
        rows.append(row)

    def place(account: _Account, date: dt.date, draw, kind: str = "", dates: list[dt.date] | None = None) -> None:
        for attempt in range(PLACE_ATTEMPTS):
            if dates and attempt and attempt % 100 == 0:
                date = rng.choice(dates)  # that day's few round amounts are taken: another day
            row = make(account, date, draw(), kind)
            if free(row):
                add(row)
                return
        # Never a silent endless loop: a generator that cannot place a row says so.
        raise ValueError(f"no free amount for a {kind or 'background'} payment of {account.code} on {date} "
                         f"after {PLACE_ATTEMPTS} draws; ask for fewer records or a lower anomaly rate")

    for _ in range(background):
        account = rng.choice(world.accounts)
        place(account, rng.choice(world.business_days), lambda a=account: world.normal_amount(a))
    truth_rules: dict[str, list] = {rule: [] for rule in ("round_amount", "just_below_threshold", "weekend_holiday",
                                                           "duplicate_payment", "account_outlier")}
    big = [a for a in world.accounts if 2500 <= a.scale <= 20000]
    mid = [a for a in world.accounts if 3000 <= a.scale <= 30000]
    small = [a for a in world.accounts if a.scale <= 300]
    # Originals carry a reference, so that a bank statement of the ledger matches them by it
    # (their copies, paid once by the bank, are not on the statement).
    originals = rng.sample([i for i, row in enumerate(rows) if row["reference"]], planted) if planted else []

    def round_amount(account: _Account) -> Decimal:
        amount = Decimal(max(1, round(account.scale * rng.uniform(0.6, 1.6) / 1000)) * 1000)
        return amount + 1000 if THRESHOLD * (1 - THRESHOLD_MARGIN) <= amount < THRESHOLD else amount

    def below_threshold() -> Decimal:
        while True:
            amount = _money(rng.uniform(9500.01, 9999.99))
            if amount % 1:
                return amount

    def outlier(account: _Account) -> Decimal:
        while True:
            amount = _money(account.scale * rng.uniform(40, 120))
            if not _flags_by_construction(amount):
                return amount

    for n in range(planted):
        account = rng.choice(big)
        place(account, rng.choice(world.business_days), lambda a=account: round_amount(a), "round_amount",
              world.business_days)
        place(rng.choice(mid), rng.choice(world.business_days), below_threshold, "just_below_threshold")
        account = rng.choice(world.accounts)
        closed = world.holidays[n // 4 % len(world.holidays)] if n % 4 == 0 else rng.choice(world.weekend_days)
        place(account, closed, lambda a=account: world.normal_amount(a), "weekend_holiday")
        account = rng.choice(small)
        place(account, rng.choice(world.business_days), lambda a=account: outlier(a), "account_outlier")
        original = rows[originals[n]]
        later = [original["date"] + dt.timedelta(days=d) for d in range(0, DUPLICATE_WINDOW_DAYS)]
        copy = dict(original, date=rng.choice([d for d in later if _is_business_day(d)] or [original["date"]]),
                    reference="", _kind="duplicate_payment", _original=originals[n])
        if n % 2:
            copy["counterparty"] = _spelling_variant(original["counterparty"], rng)
        copy["description"] = original["description"] if rng.random() < 0.5 else world.description(
            original["counterparty"])
        rows.append(copy)
    # Ledgers come in date order; ids follow it.
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["date"], i))
    position = {old: new for new, old in enumerate(order)}
    rows = [rows[i] for i in order]
    for i, row in enumerate(rows):
        row["id"] = f"TX{seed:03d}-{i + 1:06d}"
    pairs = []
    for row in rows:
        kind = row.pop("_kind")
        original = row.pop("_original", None)
        if kind == "duplicate_payment":
            pairs.append([rows[position[original]]["id"], row["id"]])
            truth_rules[kind].append(row["id"])
        elif kind:
            truth_rules[kind].append(row["id"])
    records = [{"id": r["id"], "date": r["date"].isoformat(), "amount": str(r["amount"]), "currency": r["currency"],
                "account": r["account"], "counterparty": r["counterparty"], "description": r["description"],
                "reference": r["reference"]} for r in rows]
    truth: dict = {"type": "ledger", "seed": seed, "records": len(records),
                   "rules": {rule: sorted(ids) for rule, ids in truth_rules.items()}, "duplicate_pairs": pairs,
                   "options": {"thresholds": [str(THRESHOLD)], "threshold_margin": str(THRESHOLD_MARGIN),
                               "round_unit": str(ROUND_UNIT), "duplicate_window_days": DUPLICATE_WINDOW_DAYS}}
    if invalid:
        planted_ids = {i for ids in truth["rules"].values() for i in ids} | {i for pair in pairs for i in pair}
        records, truth = _with_invalid(records, truth, rng, planted_ids)
    return records, truth


_INVALID = [
    ("amount", "n/a", "invalid_amount"), ("amount", "", "missing_amount"), ("amount", "TBD", "invalid_amount"),
    ("date", "2025-02-30", "invalid_date"), ("date", "03/04/2025", "ambiguous_date"), ("date", "", "missing_date"),
    ("date", "next week", "invalid_date"), ("currency", "EURO", "invalid_currency"),
    ("currency", "ABC", "unknown_currency"), ("currency", "", "missing_currency"), ("id", "", "missing_id"),
]


def _messy(record: dict, rng: random.Random) -> tuple[dict, dict]:
    """A valid record rewritten in a format real exports use, and its normalised values."""
    amount = Decimal(record["amount"])
    date = dt.date.fromisoformat(record["date"])
    style = rng.randrange(6)
    messy = dict(record)
    if style == 0:
        messy["amount"] = f"{amount:,.2f}"
    elif style == 1:
        messy["amount"] = f"({amount:,.2f})"
        amount = -amount
    elif style == 2:
        messy["amount"] = f"{amount:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    elif style == 3:
        messy["amount"] = f"{amount:.2f}-"
        amount = -amount
    elif style == 4:
        messy["date"] = f"{date.day:02d}.{date.month:02d}.{date.year}"
    else:
        messy["date"] = f"{date.day} {_MONTHS[date.month - 1][:3]} {date.year}"
    return messy, {"amount": str(amount.quantize(Decimal("0.01"))), "date": date.isoformat()}


def _with_invalid(records: list[dict], truth: dict, rng: random.Random,
                  planted: set[str] = frozenset()) -> tuple[list[dict], dict]:
    """Breaks, reformats and repeats records; never a `planted` one, so that the red-flag truth
    still holds for what an ingestion of the file stores."""
    n = len(records)
    spare = [i for i in range(n) if records[i]["id"] not in planted]
    bad = rng.sample(spare, max(len(_INVALID), n // 100))
    messy = rng.sample(sorted(set(spare) - set(bad)), max(6, n // 50))
    invalid_codes: dict[str, str] = {}
    normalised: dict[str, dict] = {}
    out = [dict(r) for r in records]
    for k, index in enumerate(bad):
        field, value, code = _INVALID[k % len(_INVALID)]
        out[index][field] = value
        invalid_codes[str(index)] = code
    for index in messy:
        out[index], normalised[out[index]["id"]] = _messy(out[index], rng)
    # A slice of the file exported twice: repeated ids (the copies are reported as duplicates).
    repeats = [dict(out[i]) for i in rng.sample(range(n), max(3, n // 200)) if str(i) not in invalid_codes]
    repeated_indexes = list(range(len(out), len(out) + len(repeats)))
    out.extend(repeats)
    truth = dict(truth, invalid=invalid_codes, normalised=normalised, repeated_ids=repeated_indexes,
                 records=len(out))
    return out, truth


# --- reconciliation ----------------------------------------------------------------------------

def _bank_name(name: str, rng: random.Random) -> str:
    """A counterparty as a bank prints it: upper case, maybe truncated or prefixed."""
    style = rng.random()
    if style < 0.35:
        return name.upper()
    if style < 0.55:
        return name.upper()[:18].strip()
    if style < 0.7:
        return f"SEPA CT {name.upper()}"
    if style < 0.8:
        return " ".join(name.split()[:2])
    return name


def reconciliation_sample(count: int, seed: int = 1) -> tuple[list[dict], list[dict], dict]:
    """(ledger records, statement lines, truth) for `count` ledger payments.

    Truth `lines`: line id -> {expected: matched | ambiguous | unmatched, ledger_id, kind}
    with kinds exact, late (value date 1-3 days later), fee (bank charge deducted: the
    amount differs), bank_only (no ledger row), duplicate (the bank listed a payment twice),
    ambiguous_pair (two identical payments without references: either line fits either).
    `ledger_without_line`: ledger ids the statement does not show.
    """
    rng = random.Random(seed * 7919 + 1)
    records, _ = ledger(count, seed, anomalies=False)
    world = _World(random.Random(seed))
    pairs = max(2, count // 400)
    for n in range(pairs):  # identical twin payments (a new amount), no reference
        base = dict(rng.choice(records))
        base.update(reference="", amount=str(_money(float(base["amount"]) * rng.uniform(1.13, 1.87))))
        for k in range(2):
            records.append(dict(base, id=f"TX{seed:03d}-T{n:04d}{k}"))
    twins = {r["id"] for r in records if "-T" in r["id"]}
    missing = set(rng.sample([r["id"] for r in records if r["id"] not in twins], max(3, count // 20)))
    statement, truth_by_id = bank_statement(records, rng, world, seed, missing=missing, twins=twins)
    truth = {"type": "reconciliation", "seed": seed, "ledger_records": len(records), "lines": truth_by_id,
             "ledger_without_line": sorted(missing)}
    return records, statement, truth


def bank_statement(records: list[dict], rng: random.Random, world: _World, seed: int, *,
                   missing: set[str] = frozenset(), twins: set[str] = frozenset(),
                   keep_reference: set[str] = frozenset()) -> tuple[list[dict], dict]:
    """The bank's view of the ledger `records` (as stored: normalised values): one line per
    payment but those in `missing`, plus bank-only lines. Returns (lines, truth by line id).
    `twins` are identical payments (expected ambiguous); lines of `keep_reference` payments
    always show the ledger reference."""
    lines: list[dict] = []
    truth_lines: dict[str, dict] = {}
    for record in records:
        if record["id"] in missing:
            continue
        date = dt.date.fromisoformat(record["date"])
        lag = rng.choices([0, 1, 2, 3], weights=[50, 30, 15, 5])[0]
        amount = Decimal(record["amount"])
        kind = "late" if lag else "exact"
        if rng.random() < 0.08 and amount > 100 and record["id"] not in twins:
            amount -= _money(float(amount) * rng.uniform(0.002, 0.012))
            kind = "fee"
        shown = record["reference"] and (rng.random() < 0.7 or record["id"] in keep_reference)
        line = {"date": (date + dt.timedelta(days=lag)).isoformat(), "amount": str(amount),
                "currency": record["currency"], "counterparty": _bank_name(record["counterparty"], rng),
                "description": f"SEPA CREDIT TRANSFER {record['description'][:20].upper()}",
                "reference": record["reference"] if shown else ""}
        expected = "ambiguous" if record["id"] in twins else "matched"
        lines.append(line)
        truth_lines[str(len(lines) - 1)] = {"expected": expected, "ledger_id": record["id"],
                                            "kind": "ambiguous_pair" if record["id"] in twins else kind}
        if rng.random() < 0.005 and record["id"] not in twins:
            lines.append(dict(line))
            truth_lines[str(len(lines) - 1)] = {"expected": "unmatched", "ledger_id": None, "kind": "duplicate"}
    for _ in range(max(5, len(records) // 30)):
        day = rng.choice(world.business_days)
        kind = rng.random()
        if kind < 0.5:
            line = {"amount": str(-_money(rng.uniform(2.5, 45))), "counterparty": "", "description": "BANK CHARGES"}
        elif kind < 0.75:
            line = {"amount": str(_money(rng.choice([100, 200, 250, 500]))), "counterparty": "",
                    "description": f"CASH WITHDRAWAL ATM {rng.randrange(1000, 9999)}"}
        else:
            line = {"amount": str(_money(rng.uniform(20, 3000))),
                    "counterparty": rng.choice(["QUICKMART 0231", "FUELSTOP 77", "ONLINE MARKET EU", "TAXI CITY"]),
                    "description": "CARD PAYMENT"}
        lines.append(dict(line, date=day.isoformat(), currency=rng.choice(["EUR", "USD", "GBP"]), reference=""))
        truth_lines[str(len(lines) - 1)] = {"expected": "unmatched", "ledger_id": None, "kind": "bank_only"}
    order = sorted(range(len(lines)), key=lambda i: (lines[i]["date"], i))
    statement, truth_by_id = [], {}
    for n, old in enumerate(order, start=1):
        line = dict(lines[old], id=f"BS{seed:03d}-{n:06d}")
        statement.append({key: line[key] for key in STATEMENT_FIELDS})
        truth_by_id[line["id"]] = truth_lines[str(old)]
    return statement, truth_by_id


def transaction_sample(count: int, seed: int = 1) -> tuple[list[dict], list[dict], dict]:
    """(transaction records, bank statement lines, truth): what `generate_sample --type
    transaction` writes.

    The records are a ledger with planted red flags (truth `rules`, `duplicate_pairs`, as in
    `ledger`) and the ingestion traps of `ledger(invalid=True)` (truth `invalid`,
    `normalised`, `repeated_ids`); the traps never touch a planted record, so the red-flag
    truth holds for the stored ledger (an analysis with `options.source = "project"`). The
    statement is the bank's view of what a correct ingestion stores (valid rows, first
    occurrence, normalised values); the second posting of a planted duplicate payment is not
    on it (the bank paid once). Truth `statement`: `lines` and `ledger_without_line` as in
    `reconciliation_sample`.
    """
    records, truth = ledger(count, seed, anomalies=True, invalid=True)
    invalid = {int(index) for index in truth["invalid"]}
    repeated = set(truth["repeated_ids"])
    stored = []
    for index, record in enumerate(records):
        if index in invalid or index in repeated:
            continue
        stored.append(dict(record, **truth["normalised"].get(record["id"], {})))
    rng = random.Random(seed * 7919 + 2)
    world = _World(random.Random(seed))
    copies = {copy for _, copy in truth["duplicate_pairs"]}
    originals = {original for original, _ in truth["duplicate_pairs"]}
    others = [r["id"] for r in stored if r["id"] not in copies and r["id"] not in originals]
    missing = copies | set(rng.sample(others, max(3, len(stored) // 50)))
    statement, lines = bank_statement(stored, rng, world, seed, missing=missing, keep_reference=originals)
    truth = dict(truth, type="transaction", stored=len(stored),
                 statement={"lines": lines, "ledger_without_line": sorted(missing)})
    return records, statement, truth


# --- entities ---------------------------------------------------------------------------------

_SYLLABLES = ["kor", "van", "dex", "ta", "lu", "mi", "ra", "zen", "bel", "tor", "quin", "sa", "vo", "ne", "lix",
              "pan", "gor", "li", "mar", "tek", "sol", "ver", "ka", "den", "fa", "rho", "gal", "tis", "bru", "no"]
_ACCENTED = ["Müller", "Société", "Björk", "Nuñez", "Crème", "Zürich", "Ångström", "Façade", "Łukasz", "Škoda"]
_ENTITY_INDUSTRIES = ["Trading", "Holdings", "Logistics", "Consulting", "International", "Services", "Partners",
                      "Systems", "Group", "Industries", "Engineering", "Capital", "Foods", "Pharma", "Textiles"]
_SUFFIX_VARIANTS = {"Ltd": ["Ltd", "Ltd.", "LTD", "Limited"], "GmbH": ["GmbH", "G.m.b.H.", "GMBH"],
                    "S.A.": ["S.A.", "SA", "S.A"], "Inc": ["Inc", "Inc.", "Incorporated"],
                    "LLC": ["LLC", "L.L.C.", "llc"], "AG": ["AG", "A.G."], "B.V.": ["B.V.", "BV"],
                    "plc": ["plc", "PLC"], "": [""]}
_ABBREVIATE = {"International": "Intl", "Services": "Svcs", "Holdings": "Hldgs", "Engineering": "Eng",
               "Industries": "Inds", "Systems": "Sys"}


def _edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Levenshtein distance; with `limit`, any distance of at least `limit` is returned as
    `limit` as soon as a row of the table shows it (what the entity generator asks)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if limit is not None and min(current) >= limit:
            return limit
        previous = current
    return previous[-1] if limit is None else min(previous[-1], limit)


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)).replace(
        "Ł", "L").replace("ł", "l")


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1:]
    if kind == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    replacement = rng.choice([c for c in "aeiourstnl" if c != word[i].lower()])
    return word[:i] + replacement + word[i + 1:]


MAX_ENTITIES = 1000  # enough to be realistic; bounded so that the distinctness check stays quick


def entity_names(count: int, seed: int = 1) -> tuple[list[dict], dict]:
    """`count` entity-name records of about count / 8 distinct entities (at most 1,000), and the truth:
    `entities` (record id -> entity number) and `variants` (record id -> how the name was
    varied: canonical, case, suffix, punctuation, accents, typo, abbreviation, article).
    Case, suffix, punctuation and accent variants must get the canonical name's entity key;
    typo, abbreviation and article variants need grouping."""
    rng = random.Random(seed)
    size = min(MAX_ENTITIES, max(20, count // 8))
    bases: list[tuple[str, str, str]] = []
    firsts: list[str] = []
    while len(bases) < size:
        if rng.random() < 0.08:
            first = rng.choice(_ACCENTED)
        else:
            first = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice([2, 3, 4]))).capitalize()
        # Distinct entities must not look alike: first words at least 4 edits apart (words
        # whose lengths differ by 4 or more always are), and neither inside the other
        # ("Verlix" / "Galverlix" could be one company abbreviated).
        folded = _strip_accents(first).lower()
        if any(folded in other or other in folded or (abs(len(folded) - len(other)) < 4
                                                      and _edit_distance(folded, other, 4) < 4) for other in firsts):
            continue
        firsts.append(folded)
        bases.append((first, rng.choice(_ENTITY_INDUSTRIES), rng.choice(list(_SUFFIX_VARIANTS))))
    # Cumulative weights, computed once: `choices(weights=...)` sums all of them again on every
    # draw (about 5 of the 26 s that 60,000 names took; most of the rest was the base names'
    # edit distances, bounded above). Same draws either way.
    entity_weights = list(itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(size)))
    kinds = ["canonical", "case", "suffix", "punctuation", "accents", "typo", "abbreviation", "article"]
    kind_weights = list(itertools.accumulate([40, 12, 15, 8, 5, 10, 5, 5]))
    records, entities, variants = [], {}, {}
    for n in range(count):
        entity = rng.choices(range(size), cum_weights=entity_weights)[0]
        first, industry, suffix = bases[entity]
        kind = rng.choices(kinds, cum_weights=kind_weights)[0]
        words, suffix_text = [first, industry], suffix
        if kind == "case":
            name = rng.choice([str.upper, str.lower, str.title])(" ".join([first, industry, suffix]).strip())
        else:
            if kind == "suffix":
                suffix_text = rng.choice(_SUFFIX_VARIANTS[suffix])
            elif kind == "accents":
                if _strip_accents(first) == first:
                    kind = "canonical"
                words = [_strip_accents(first), industry]
            elif kind == "typo":
                target = 0 if len(first) >= 5 and rng.random() < 0.6 else 1
                words[target] = _typo(words[target], rng)
            elif kind == "abbreviation":
                if industry in _ABBREVIATE:
                    words[1] = _ABBREVIATE[industry]
                else:
                    kind = "canonical"
            elif kind == "article":
                words = ["The", *words]
            name = " ".join(words)
            if suffix_text:
                name = f"{name}, {suffix_text}" if kind == "punctuation" else f"{name} {suffix_text}"
            elif kind == "punctuation":
                name = f"{name}."
        record_id = f"E{seed:03d}-{n + 1:06d}"
        records.append({"id": record_id, "name": name, "type": "company", "country": ""})
        entities[record_id] = entity
        variants[record_id] = kind
    truth = {"type": "entity", "seed": seed, "entities": entities, "variants": variants,
             "canonical": {str(i): " ".join(part for part in base if part) for i, base in enumerate(bases)}}
    return records, truth


# --- descriptions ------------------------------------------------------------------------------

_TEMPLATES = [
    "{item} for {month} {year} - {vendor}, invoice {inv}",
    "Invoice {inv} from {vendor}: {item}",
    "{vendor} {item} {month} (PO {po})",
    "Payment to {vendor} re {item}, inv. {inv}",
    "{item}, {vendor}, period {month} {year}, ref {inv}",
]


def _edit_text(text: str, rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["exact", "case", "spacing", "punctuation", "typo", "word"])
    if kind == "case":
        return text.upper() if rng.random() < 0.5 else text.lower(), kind
    if kind == "spacing":
        return text.replace(" ", "  ", 2) + " ", kind
    if kind == "punctuation":
        return text.replace(",", "").replace(":", " -").replace(" - ", " / "), kind
    if kind == "typo":
        words = text.split()
        candidates = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 5]
        if candidates:
            i = rng.choice(candidates)
            words[i] = _typo(words[i], rng)
        return " ".join(words), kind
    if kind == "word":
        for word in (" for ", " from ", " to ", " re "):
            if word in text:
                return text.replace(word, " ", 1), kind
    return text, "exact"


def _shape(text: str) -> str:
    """A text without its digits: two texts of one shape describe the same thing."""
    return "".join(ch for ch in text if not ch.isdigit())


def _description(template: int, vendor: str, item: str, month: str, rng: random.Random) -> str:
    return _TEMPLATES[template].format(item=item.capitalize() if template in (0, 4) else item, month=month,
                                       year=2025, vendor=vendor, inv=rng.randrange(10000, 99999),
                                       po=rng.randrange(1000, 9999))


def _distinct_shapes(vendors: list[str]) -> int:
    probe = random.Random(0)
    return len({_shape(_description(template, vendor, item, month, probe)) for vendor in vendors
                for item in _ITEMS for month in _MONTHS for template in range(len(_TEMPLATES))})


def descriptions(count: int, seed: int = 1, duplicate_rate: float = 0.03) -> tuple[list[dict], dict]:
    """`count` description records, about `duplicate_rate` of them near-duplicates (a copy of
    an earlier text, exact or lightly edited: case, spacing, punctuation, a typo, a dropped
    word). Truth: `pairs` ([original id, copy id, edit]). Other texts differ in vendor, item or
    period, so no two of them describe the same thing."""
    rng = random.Random(seed)
    vendors = [f"{w} {rng.choice(_INDUSTRIES)}" for w in _NAME_WORDS]
    copies = max(5, round(count * duplicate_rate))
    wanted = count - copies
    if wanted > 20_000 and wanted > (distinct := _distinct_shapes(vendors)):
        # Each background text needs a shape of its own; past that many the loop below would
        # never end, so refuse at once and say what fits.
        raise ValueError(f"at most {distinct:,} distinct description texts (plus about {duplicate_rate:.0%} "
                         f"near-duplicates) can be generated; asked for {count:,} records")
    seen: set[str] = set()
    texts: list[str] = []
    while len(texts) < count - copies:
        vendor, item, month = rng.choice(vendors), rng.choice(_ITEMS), rng.choice(_MONTHS)
        template = rng.randrange(len(_TEMPLATES))
        text = _description(template, vendor, item, month, rng)
        # Two texts that differ only in their numbers describe the same thing twice: that is a
        # near-duplicate, so the background has none unless planted.
        shape = _shape(text)
        if shape in seen:
            continue
        seen.add(shape)
        texts.append(text)
    background = [{"id": f"D{seed:03d}-{n + 1:06d}", "text": text} for n, text in enumerate(texts)]
    # Each copy goes somewhere after its original: a sort key between the original's position
    # and the end (linear, where inserting into the list one copy at a time was quadratic).
    keyed: list[tuple[float, int, dict]] = [(float(n), 0, record) for n, record in enumerate(background)]
    pairs = []
    for _ in range(copies):
        index = rng.randrange(len(background))
        original = background[index]
        text, edit = _edit_text(original["text"], rng)
        copy = {"id": f"D{seed:03d}-C{len(pairs) + 1:05d}", "text": text}
        keyed.append((rng.uniform(index + 0.5, len(background)), len(pairs) + 1, copy))
        pairs.append([original["id"], copy["id"], edit])
    records = [record for _, _, record in sorted(keyed, key=lambda entry: entry[:2])]
    return records, {"type": "embedding", "seed": seed, "pairs": pairs}


@dataclasses.dataclass
class Sample:
    """Files of one sample (role -> records; `main` is the role to submit as `data_type`;
    `submit_as` says what to submit every role as, in the order to submit them)."""

    data_type: str
    main: str
    files: dict[str, list[dict]]
    truth: dict
    submit_as: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.submit_as = self.submit_as or {self.main: self.data_type}


def sample(data_type: str, count: int, seed: int = 1) -> Sample:
    """The forensic sample for `data_type` (one of SAMPLE_TYPES)."""
    if data_type == "transaction":
        records, statement, truth = transaction_sample(count, seed)
        return Sample(data_type, "transactions", {"transactions": records, "statement": statement}, truth,
                      {"transactions": "transaction", "statement": "reconciliation"})
    if data_type == "analysis":
        records, truth = ledger(count, seed, anomalies=True)
        return Sample(data_type, "ledger", {"ledger": records}, truth)
    if data_type == "reconciliation":
        ledger_records, lines, truth = reconciliation_sample(count, seed)
        return Sample(data_type, "statement", {"ledger": ledger_records, "statement": lines}, truth,
                      {"ledger": "transaction", "statement": "reconciliation"})
    if data_type == "entity":
        records, truth = entity_names(count, seed)
        return Sample(data_type, "entities", {"entities": records}, truth)
    if data_type == "embedding":
        records, truth = descriptions(count, seed)
        return Sample(data_type, "texts", {"texts": records}, truth)
    raise ValueError(f"no sample for data type {data_type!r}; choose from {', '.join(SAMPLE_TYPES)}")
