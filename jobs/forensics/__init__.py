"""Forensic-accounting logic behind the built-in data types, as plain functions.

Nothing here touches the database or the batch engine: handlers in `jobs.datatypes` feed
these functions rows and store what they return, so the rules can be tested (and reused)
on their own.

- `calendar`: weekends and bank holidays (TARGET2 closing days by default).
- `redflags`: per-record rules, per-account robust outliers, duplicate payments.
- `benford`: Benford's first-digit and first-two-digit tests with Nigrini's bands.
- `similarity`: n-grams, string similarity, MinHash bands, union-find, vectors.
- `matching`: matching bank-statement lines to ledger transactions.
- `entities`: name fingerprints and near-duplicate grouping.
"""
