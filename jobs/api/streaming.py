"""A JSON submission read as a stream: `{"project_id": ..., "items": [...], ...}` of any size.

DRF's JSON parser would hold the whole body and every record at once (a million records are
a few GB of Python objects). Here the top-level object is scanned key by key; the `items`
array is checked element by element (each must be an object; at most the job limit) and
spooled to a temporary file as JSON lines, so memory holds one record at a time. The
submission then reads the spool like an uploaded JSON-lines file.

The body is read within the readers' budget (jobs.importing.limits): one value at most
ZENITH_MAX_LINE_BYTES long, nested at most ZENITH_MAX_JSON_DEPTH deep, a record's keys within
ZENITH_MAX_COLUMNS, the whole within ZENITH_MAX_PARSE_SECONDS; over one is a LimitExceeded
naming it. `BoundedJSONParser` holds the other endpoints' JSON bodies to the same depth.
"""

from __future__ import annotations

import dataclasses
import tempfile
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from jobs.errors import BodyTooLarge, InputError, LimitExceeded, TooManyItems
from jobs.importing.limits import Budget, check_depth
from jobs.importing.readers import JsonScanner, _json_kind

STREAMED = object()


@dataclasses.dataclass
class StreamedSubmission:
    fields: dict[str, Any]
    items: IO[bytes] | None
    count: int


def read_submission(stream: IO[bytes], length: int) -> StreamedSubmission:
    """`length` is the declared Content-Length, refused up front when over the upload limit."""
    if length > settings.ZENITH_MAX_UPLOAD_BYTES:
        raise BodyTooLarge(settings.ZENITH_MAX_UPLOAD_BYTES)
    limit = settings.ZENITH_MAX_ITEMS_PER_JOB
    budget = Budget()
    scanner = JsonScanner(stream, budget)
    fields: dict[str, Any] = {}
    spool, count = None, 0
    try:
        scanner.take("{", "a JSON object")
        if scanner.peek() == "}":
            scanner.take("}", "'}'")
        else:
            while True:
                key = scanner.value()
                if not isinstance(key, str):
                    raise InputError("object keys must be strings", scanner.line)
                if key in fields:
                    raise InputError(f"duplicate key '{key}'", scanner.line)
                scanner.take(":", "':' after a key")
                if key == "items" and scanner.peek() == "[":
                    spool = tempfile.TemporaryFile()
                    for index, (item, source) in enumerate(scanner.array(raw=True)):
                        if not isinstance(item, dict):
                            raise ValidationError({"items": [f"item {index} must be a JSON object, not "
                                                             f"{_json_kind(item)}"]})
                        count += 1
                        if count > limit:
                            raise TooManyItems(limit)
                        if len(item) > budget.limits.columns:  # (its depth: scanner.array)
                            budget.check_columns(len(item), scanner.line, what="an item has", unit="keys")
                        # Literal line breaks can only be white space between tokens in JSON.
                        spool.write(source.replace("\n", " ").replace("\r", " ").encode("utf-8") + b"\n")
                    fields["items"] = STREAMED
                else:
                    fields[key] = scanner.value()
                if scanner.peek() == ",":
                    scanner.take(",", "','")
                    continue
                scanner.take("}", "',' or '}' in the object")
                break
        scanner.end()
    except LimitExceeded:
        if spool is not None:
            spool.close()
        raise
    except InputError as exc:
        if spool is not None:
            spool.close()
        raise ParseError(f"JSON parse error - {exc}") from None
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    if spool is not None:
        spool.seek(0)
    return StreamedSubmission(fields, spool, count)


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser within the nesting budget: its json.load recurses, and a body nested
    a hundred thousand deep was a RecursionError, a 500 (REST_FRAMEWORK's default parser)."""

    def parse(self, stream, media_type=None, parser_context=None):
        budget = Budget()
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise budget.too_deep() from None
        check_depth(data, budget)
        return data
