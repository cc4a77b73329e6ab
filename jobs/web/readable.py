"""A job's import details and summary as sentences and tables, for the job page and the
upload preview (they are stored as JSON: jobs.importing.opening writes the first, each data
type's `summarize` the second). Only wording lives here; the numbers are the stored ones.

A key this module does not know still shows, labelled from its name, with its value laid out
by shape (a number, a list, a table of pairs or of rows), so a new key is never lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.formats import number_format

DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars", " ": "spaces"}
SEPARATORS = {".": "point (.)", ",": "comma (,)", " ": "space", "'": "apostrophe (')", "": "none", "\u00a0": "space"}
FORMATS = {"csv": "delimited text (CSV)", "xlsx": "an Excel workbook", "json": "a JSON array", "jsonl": "JSON lines",
           "ofx": "an OFX statement", "items": "JSON items sent to the API"}
MODES = {
    "canonical": "Read in canonical mode: the headers already are Zenith's field names, so every column was taken "
                 "as it is.",
    "mapped": "Read in mapped mode: columns were matched to Zenith's fields by their headers (or by the mapping "
              "given), as the table says.",
    "pass-through": "Read in pass-through mode: no column holds dates or amounts, so each row became a record keyed "
                    "by its headers.",
    "statement": "Each statement transaction became a record.",
}
MAPPING_RULES = {
    "day_first": "Dates are day first", "date_format": "Date format", "decimal_separator": "Decimal separator",
    "thousands_separator": "Thousands separator", "sign": "Amount signs", "default_currency": "Currency when none",
    "header_row": "Header on line", "has_header": "The file has a header", "delimiter": "Field separator",
    "encoding": "Encoding", "sheet": "Sheet", "constants": "Fixed values",
}

# Summary keys shown elsewhere on the job page (the results' counts and Benford tables).
SHOWN_WITH_RESULTS = frozenset({"findings_by_rule", "findings_by_severity", "benford_first_digit",
                                "benford_first_two_digits", "outcomes", "matched_by_stage"})
# Summary keys that list stored transaction ids: shown as links to the transaction pages.
TRANSACTION_ID_LISTS = frozenset({"duplicate_ids_sample", "ledger_unmatched_sample"})
RATES = frozenset({"match_rate"})
LABELS = {
    "stored": "Stored", "duplicates_within_job": "Repeated ids within this upload",
    "duplicates_across_jobs": "Ids stored by earlier uploads", "duplicate_ids_sample": "Repeated ids (first 20)",
    "records": "Records screened", "findings": "Findings", "flagged_records": "Records with a finding",
    "lines": "Statement lines", "match_rate": "Lines matched", "rematched_after_conflicts":
        "Lines matched again after two claimed one ledger row", "period": "Statement period",
    "ledger_transactions_in_period": "Ledger rows in the period", "ledger_unmatched_in_period":
        "Ledger rows in the period no line matched", "ledger_unmatched_sample": "Unmatched ledger rows (first 20)",
    "names": "Names", "distinct_names": "Distinct after normalising", "entities": "Entities",
    "near_duplicate_groups": "Near-duplicate groups", "names_in_groups": "Names in groups",
    "largest_groups": "Largest groups", "texts": "Texts", "methods": "Vectorised with",
    "near_duplicate_threshold": "Near-duplicate similarity at least", "near_duplicate_texts": "Near-duplicate texts",
    "error": "Refused",
}


def label(key: str) -> str:
    return LABELS.get(key) or key.replace("_", " ").capitalize()


def _n(value: Any) -> str:
    return number_format(value, force_grouping=True) if isinstance(value, int) else str(value)


def _value(key: str, value: Any) -> dict:
    """A value laid out by its shape, for templates/jobs/_readable_value.html."""
    if value is None:
        return {"kind": "text", "text": "none"}
    if isinstance(value, bool):
        return {"kind": "text", "text": "yes" if value else "no"}
    if isinstance(value, int):
        return {"kind": "text", "text": _n(value), "number": True}
    if isinstance(value, float):
        text = f"{value:.1%}" if key in RATES else f"{value:g}"
        return {"kind": "text", "text": text, "number": True}
    if isinstance(value, str):
        return {"kind": "text", "text": value}
    if isinstance(value, Mapping):
        if all(not isinstance(v, (Mapping, list)) for v in value.values()):
            return {"kind": "pairs", "pairs": [(label(str(k)) if k in LABELS else str(k), _value(str(k), v)["text"])
                                               for k, v in value.items()]}
        return {"kind": "pairs", "pairs": [(str(k), _flat(v)) for k, v in value.items()]}
    if isinstance(value, list):
        if key == "period" and len(value) == 2:
            return {"kind": "text", "text": f"{value[0]} to {value[1]}"}
        if key in TRANSACTION_ID_LISTS and all(isinstance(v, str) for v in value):
            return {"kind": "ids", "ids": value}
        if value and all(isinstance(v, Mapping) for v in value):
            columns = list(dict.fromkeys(k for row in value for k in row))
            return {"kind": "rows", "columns": [label(c) for c in columns],
                    "rows": [[_flat(row.get(c)) for c in columns] for row in value]}
        return {"kind": "text", "text": ", ".join(_flat(v) for v in value) or "none"}
    return {"kind": "text", "text": str(value)}


def _flat(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_flat(v) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    if value is None:
        return "none"
    return _n(value)


def _separator(value: Any) -> str:
    return SEPARATORS.get(value, repr(value)) if value is not None else "each value's own"


# --- import details -------------------------------------------------------------------------------


def import_reading(details: Mapping[str, Any] | None, *, shown_elsewhere: tuple[str, ...] = ()) -> dict | None:
    """How the file was read: `sentences`, then `columns` (file column, field, what happened
    to it), `dates` and `numbers` (how each such column was read), `mapping` (what the user
    gave) and `other` (keys this page does not know, but those the caller shows itself)."""
    if not details:
        return None
    details = {key: value for key, value in details.items() if key not in shown_elsewhere}
    sentences: list[str] = []
    if details.get("source") == "project":
        count = details.get("transactions")
        sentences.append(f"Read the project's stored transactions as they were at submission: {_n(count)} rows "
                         f"(row ids {details.get('first_id')} to {details.get('last_id')}).")
        known = {"source", "transactions", "first_id", "last_id"}
        return {"sentences": sentences, "columns": [], "dates": [], "numbers": [], "mapping": [],
                "other": [(label(k), _value(k, v)) for k, v in details.items() if k not in known]}
    fmt = details.get("format")
    first = f"Read as {FORMATS.get(fmt, fmt or 'a file')}"
    if details.get("encoding") and fmt != "xlsx":
        first += f", encoded in {str(details['encoding']).upper()}"
    if details.get("delimiter"):
        first += f", with fields separated by {DELIMITERS.get(details['delimiter'], repr(details['delimiter']))}"
    first += "."
    if "header_row" in details:
        row = details["header_row"]
        where = "row" if fmt == "xlsx" else "line"
        first += f" The header is on {where} {row}." if row else " The file has no header row: columns are numbered."
    sentences.append(first)
    if details.get("mode") in MODES:
        sentences.append(MODES[details["mode"]])
    for key, text in (("id", "Ids"), ("currency", "Currency"), ("sign", "Amount signs")):
        if details.get(key):
            sentences.append(f"{text}: {details[key]}.")
    if details.get("mapping_name"):
        sentences.append(f"The saved mapping \u201c{details['mapping_name']}\u201d was applied.")
    if isinstance(details.get("from_options"), Mapping):
        pinned = ", ".join(f"{MAPPING_RULES.get(k, k).lower()}: {_flat(v)}" for k, v in details["from_options"].items())
        sentences.append(f"Pinned by the job's options: {pinned}.")
    return {
        "sentences": sentences,
        "columns": _columns(details),
        "dates": [_date_reading(d) for d in details.get("dates") or [] if isinstance(d, Mapping)],
        "numbers": [_number_reading(n) for n in details.get("numbers") or [] if isinstance(n, Mapping)],
        "mapping": _given_mapping(details.get("given_mapping")),
        "other": [(label(k), _value(k, v)) for k, v in details.items() if k not in _IMPORT_KEYS],
    }


_IMPORT_KEYS = frozenset({"format", "encoding", "delimiter", "header_row", "columns", "mapping", "mode", "dates",
                          "numbers", "id", "currency", "sign", "mapping_name", "from_options", "given_mapping"})


def _columns(details: Mapping[str, Any]) -> list[dict]:
    mapping = details.get("mapping") if isinstance(details.get("mapping"), Mapping) else {}
    fields_of: dict[Any, list[str]] = {}
    for field, column in mapping.items():
        fields_of.setdefault(column, []).append(field)
    unmapped = "not used" if details.get("mode") == "mapped" else "kept under its own name"
    rows = []
    columns = details.get("columns") or []
    for position, name in enumerate(columns, 1):
        fields = fields_of.get(name) or fields_of.get(position) or []
        rows.append({"position": position, "column": name, "fields": fields,
                     "note": "" if fields else unmapped})
    if not columns:  # no header: the mapping names column numbers
        rows = [{"position": column, "column": f"column {column}", "fields": fields, "note": ""}
                for column, fields in sorted(fields_of.items(), key=lambda item: str(item[0]))]
    return rows


def _date_reading(decision: Mapping[str, Any]) -> dict:
    if decision.get("format"):
        return {"column": decision.get("column"), "reading": f"the pattern {decision['format']} (from the mapping)",
                "order": "as the pattern says"}
    pattern = str(decision.get("pattern") or "")
    day_first = decision.get("day_first")
    if pattern.startswith("YYYY"):
        order = "year first: no day and month to tell apart"
    elif day_first is None:
        order = "not decided"
    else:
        order = "day before month" if day_first else "month before day"
    return {"column": decision.get("column"), "reading": pattern, "order": order}


def _number_reading(decision: Mapping[str, Any]) -> dict:
    symbols = decision.get("currency_symbols") or []
    thousands = decision.get("thousands_separator", None)
    return {"column": decision.get("column"), "decimal": _separator(decision.get("decimal_separator")),
            "thousands": _separator(thousands) if "thousands_separator" in decision else "recognised in each value",
            "symbols": ", ".join(symbols) if symbols else "none"}


def _given_mapping(raw: Any) -> list[tuple[str, str]]:
    if not isinstance(raw, Mapping):
        return []
    rows = []
    for field, column in (raw.get("columns") or {}).items():
        rows.append((f"{field} from", _flat(column)))
    for key, value in raw.items():
        if key == "columns":
            continue
        if key in MAPPING_RULES:
            shown = _separator(value) if key.endswith("_separator") else _flat(value) if not isinstance(
                value, bool) else ("yes" if value else "no")
            rows.append((MAPPING_RULES[key], shown))
        else:
            rows.append((f"{key} from", _flat(value)))
    return rows


# --- summary -----------------------------------------------------------------------------------


def summary_view(data_type: str, kind: str | None, summary: Mapping[str, Any] | None) -> dict | None:
    """The job's summary: `sentences` saying what it adds up to, and `rows` (label, value laid
    out by shape) for every key not already shown with the results."""
    if not summary:
        return None
    sentences = _headline(kind, summary)
    rows = [{"key": k, "label": label(k), "value": _value(k, v)} for k, v in summary.items()
            if k not in SHOWN_WITH_RESULTS]
    return {"sentences": sentences, "rows": rows,
            "shown_with_results": any(k in summary for k in SHOWN_WITH_RESULTS)}


def _headline(kind: str | None, s: Mapping[str, Any]) -> list[str]:
    if s.get("error"):
        return [f"The job's options were refused: {s['error']}."]

    def get(key: str) -> Any:
        return s.get(key) or 0

    if kind == "transactions" and "stored" in s:
        text = f"{_n(get('stored'))} transactions stored."
        if get("duplicates_within_job") or get("duplicates_across_jobs"):
            text += (f" Not stored again: {_n(get('duplicates_within_job'))} repeated within this upload and "
                     f"{_n(get('duplicates_across_jobs'))} stored already by earlier uploads.")
        return [text]
    if kind == "findings" and "records" in s:
        return [f"{_n(get('records'))} records screened: {_n(get('findings'))} findings on "
                f"{_n(get('flagged_records'))} records."]
    if kind == "matches" and isinstance(s.get("outcomes"), Mapping):
        outcomes = s["outcomes"]
        rate = s.get("match_rate")
        text = (f"{_n(outcomes.get('matched', 0))} of {_n(get('lines'))} statement lines matched a ledger row"
                + (f" ({rate:.1%})" if isinstance(rate, (int, float)) else "")
                + f"; {_n(outcomes.get('ambiguous', 0))} ambiguous, {_n(outcomes.get('unmatched', 0))} unmatched.")
        sentences = [text]
        if isinstance(s.get("period"), list) and len(s["period"]) == 2:
            sentences.append(f"The statement covers {s['period'][0]} to {s['period'][1]}: the ledger holds "
                             f"{_n(get('ledger_transactions_in_period'))} rows in that period, "
                             f"{_n(get('ledger_unmatched_in_period'))} of them matched by no line.")
        return sentences
    if kind == "entities" and "names" in s:
        return [f"{_n(get('names'))} names, {_n(get('distinct_names'))} distinct once normalised, are "
                f"{_n(get('entities'))} entities; {_n(get('near_duplicate_groups'))} groups of near-duplicates hold "
                f"{_n(get('names_in_groups'))} of the distinct names."]
    if kind == "embeddings" and "texts" in s:
        return [f"{_n(get('texts'))} texts vectorised; {_n(get('near_duplicate_texts'))} of them near-duplicate an "
                f"earlier text (similarity at least {s.get('near_duplicate_threshold')}), in "
                f"{_n(get('near_duplicate_groups'))} groups."]
    return []


def preview_table(rows: list[dict]) -> dict:
    """The preview's records as a table: one column per field (in the order the records name
    them), one row per record with its check."""
    columns = list(dict.fromkeys(key for row in rows if isinstance(row.get("record"), Mapping)
                                 for key in row["record"]))
    return {"columns": columns, "rows": [
        {**row, "cells": [_flat(row["record"].get(column, "")) if isinstance(row.get("record"), Mapping) else ""
                          for column in columns]}
        for row in rows]}
