"""Importing the files people really have: bank and ledger exports in any common shape.

Where each part lives:
- `readers`: JSON and JSON lines read as streams, formats told from names, binary refused;
- `sources`: rows out of delimited text and spreadsheets (encoding, preamble, header row);
- `statements`: OFX/QFX, SWIFT MT940 and ISO 20022 CAMT statements, and their ids;
- `headers` and `mapping`: which column feeds which Zenith field;
- `values`: whole-column decisions for dates and numbers;
- `rows`: rows into records, one row at a time, the same on the upload and on a worker;
- `blocks`: the fast path for canonical CSV files, stored as their own lines;
- `opening`: `open_import` and `preview`, what every way in (API, pages, commands) calls;
- `limits`: the budget every reader works within (sizes, lines, columns, nesting, time).
"""

from jobs.errors import InputError
from jobs.importing.mapping import Mapping
from jobs.importing.opening import RECORD_IDS, Import, expects_transactions, map_records, open_import, preview
from jobs.importing.rows import DECIDE_ROWS, RowForm

__all__ = ["DECIDE_ROWS", "RECORD_IDS", "Import", "InputError", "Mapping", "RowForm", "expects_transactions",
           "map_records", "open_import", "preview"]
