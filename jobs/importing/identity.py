"""Identities of records that carry none, and of statement lines whose references are
unique within their account only (issue 19). Imports nothing of jobs.importing, so every
reader may use it."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any


class IdDeriver:
    """Deterministic ids for records that have none (docs/design.md, "Record identity"): a
    hash of the record as the file wrote it (a row's cells as read, before any mapping; a JSON
    record's canonical text) within its `scope` (the holder's account where the file states it
    above the table), and the count of earlier records in the same file written the same way.
    Re-uploading a file, whatever mapping reads it, gives the same ids, so a corrected
    reading replaces rows instead of duplicating them; two identical rows stay two records."""

    def __init__(self, scope: str = "") -> None:
        self.occurrences: dict[bytes, int] = {}
        self.scope = scope

    def __call__(self, written: Any) -> str:
        if isinstance(written, dict):
            content = json.dumps(written, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
        elif isinstance(written, (list, tuple)):
            content = "\x1f".join(_text(cell) for cell in written)
        else:
            content = _text(written)
        if self.scope:
            content = f"{self.scope}\x1e{content}"
        digest = hashlib.sha1(content.encode("utf-8", "surrogatepass")).digest()[:12]
        self.occurrences[digest] = self.occurrences.get(digest, 0) + 1
        return f"auto-{digest.hex()}-{self.occurrences[digest]}"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def scoped(account: str, reference: str) -> str:
    """A statement's reference made unique in the project: within its account."""
    return f"{account}/{reference}" if account else reference


def plain(exc: Exception) -> str:
    """A parser's message in words: on one line, cut to a sentence's length, without the
    Python reprs some parsers put in it (issue 19)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"<[\w.]+ object at 0x[0-9a-f]+>", "an element", text)
    text = re.sub(r"<(?:Element|class) '?([^'> ]+)'?[^>]*>", r"\1", text)
    return text if len(text) <= 300 else text[:300] + "..."
