"""Keyset pagination for the analyst's pages: a page starts after (or ends before) the last
row the reader saw, named by its sort key, never by an offset. A late page then costs what the
first costs (an index walk from the key), and rows written meanwhile do not shift the pages
(docs/design.md, "Analyst pages").

A cursor is the sort key of a row, as JSON in URL-safe base64: opaque in a link, checked when
read back (a cursor that does not decode, or whose values are not of the key's types, is a
`ResultFilterError`, 400). It is not secret: it names a position, not a permission, and every
query it feeds is already restricted to what the reader may see.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Q, QuerySet

from jobs.errors import ResultFilterError

MAX_CURSOR_CHARS = 2048


@dataclasses.dataclass(frozen=True)
class Key:
    """One column of a sort key: the field, its direction, and how a cursor value is read back."""

    field: str
    descending: bool = False
    parse: Callable[[Any], Any] = lambda value: whole(value)


@dataclasses.dataclass(frozen=True)
class Page:
    rows: list
    #: cursor of the page after this one (None on the last page)
    next_cursor: str | None
    #: cursor of the page before this one (None on the first page)
    previous_cursor: str | None

    @property
    def is_first(self) -> bool:
        return self.previous_cursor is None


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def date(value: Any) -> dt.date:
    return dt.date.fromisoformat(text(value))


def decimal(value: Any) -> Decimal:
    try:
        return Decimal(text(value))
    except InvalidOperation:
        raise TypeError("not a decimal") from None


def whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not a whole number")
    return value


def encode(values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, dt.date) else str(v) if isinstance(v, Decimal) else v for v in values]
    raw = json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, keys: Sequence[Key]) -> tuple:
    """The sort key a cursor names; ResultFilterError when it is not one of `keys`' shape."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError("wrong shape")
        return tuple(key.parse(value) for key, value in zip(keys, values, strict=True))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ResultFilterError("This page link is not valid (it names no position in this list); "
                                "start again from the first page.") from None


def _beyond(keys: Sequence[Key], values: tuple, forward: bool) -> Q:
    """Rows after `values` in the keys' order (before them when not `forward`)."""
    condition = Q()
    for depth in range(len(keys) - 1, -1, -1):
        key = keys[depth]
        later = key.descending != forward  # ascending and forward: greater; descending: smaller
        step = Q(**{f"{key.field}__{'gt' if later else 'lt'}": values[depth]})
        for earlier in range(depth):
            step &= Q(**{keys[earlier].field: values[earlier]})
        condition |= step
    # Implied by the above, stated again so the planner has a range on the leading key: an
    # index on it then starts at the cursor instead of filtering every row before it.
    lead = keys[0]
    bound = Q(**{f"{lead.field}__{'gte' if lead.descending != forward else 'lte'}": values[0]})
    return bound & condition


def _ordering(keys: Sequence[Key], forward: bool) -> list[str]:
    return [("-" if key.descending == forward else "") + key.field for key in keys]


def paginate(rows: QuerySet, *, keys: Sequence[Key], size: int, after: str | None = None,
             before: str | None = None, key_of: Callable[[Any], tuple] | None = None) -> Page:
    """One page of `rows` (a queryset of dicts or models) in the order of `keys`, the last key
    unique among the rows, so that every row has exactly one position. `after`/`before` are
    cursors from an earlier page; neither means the first page. `key_of` reads a row's sort key
    (default: the keys' fields of a dict row)."""
    key_of = key_of or (lambda row: tuple(row[key.field] for key in keys))
    forward = before is None
    cursor = after if forward else before
    if cursor:
        rows = rows.filter(_beyond(keys, decode(cursor, keys), forward))
    found = list(rows.order_by(*_ordering(keys, forward))[:size + 1])
    more = len(found) > size
    found = found[:size]
    if not forward:
        found.reverse()
    if not found:
        return Page([], None, encode(decode(cursor, keys)) if cursor and forward else None)
    first, last = encode(key_of(found[0])), encode(key_of(found[-1]))
    if forward:
        return Page(found, last if more else None, first if after else None)
    return Page(found, last, first if more else None)
