"""Correlation ids: one id follows a request into the job it creates, its batches and the
finalizer, so every log line of that story can be found with one search."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import uuid
from collections.abc import Iterator

_correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("zenith_correlation_id", default="")


def get_correlation_id() -> str:
    return _correlation_id.get()


def new_correlation_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def correlation(cid: str) -> Iterator[str]:
    token = _correlation_id.set(cid or "")
    try:
        yield cid
    finally:
        _correlation_id.reset(token)


def set_correlation_id(cid: str) -> contextvars.Token:
    return _correlation_id.set(cid or "")


def reset_correlation_id(token: contextvars.Token) -> None:
    _correlation_id.reset(token)


class CorrelationFilter(logging.Filter):
    """Adds `correlation_id` to every record so formatters can always reference it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", ""):
            record.correlation_id = _correlation_id.get() or "-"
        return True
