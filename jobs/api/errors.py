"""One error shape for the whole API: `{"detail": "<a sentence naming the problem>",
"code": "<stable code>", ...}` with a 4xx status. Service exceptions are mapped here so views
stay thin, and nothing a client sends can surface as a 500 with a traceback."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from ..datatypes.registry import UnknownDataType
from ..readers import InputError
from ..services import JobAlreadyFinished, JobStateError, SubmissionError


def explain(exc: Exception) -> tuple[int, str, str, dict] | None:
    """(HTTP status, code, sentence, extra fields) for an exception the services raise about
    a request; None for anything else. Shared by the API and the upload page."""
    if isinstance(exc, SubmissionError):
        return exc.status, exc.code, exc.message, dict(exc.extra)
    if isinstance(exc, UnknownDataType):
        return 400, "unknown_data_type", str(exc), {"known_data_types": exc.known}
    if isinstance(exc, InputError):
        return 400, "malformed_input", f"The file could not be read: {exc}", {"line": exc.line}
    if isinstance(exc, JobAlreadyFinished):
        return 409, "job_finished", str(exc), {"status": exc.status}
    if isinstance(exc, JobStateError):
        return 409, "conflict", str(exc), {}
    if isinstance(exc, RequestDataTooBig):
        return 413, "too_large", "The request body is too large; upload the data as a file instead.", {}
    return None


def exception_handler(exc, context):
    explained = explain(exc)
    if explained is not None:
        http_status, code, detail, extra = explained
        headers = {"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else None
        set_rollback()
        return Response({"detail": detail, "code": code, **extra}, status=http_status, headers=headers)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": _first_message(exc.detail), "code": "invalid", "errors": exc.detail}
    elif isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data = {"detail": str(detail), "code": getattr(detail, "code", None) or exc.default_code}
    return response


def _first_message(detail, path: str = "") -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            where = key if key == "non_field_errors" else (f"{path}.{key}" if path else str(key))
            return _first_message(value, "" if key == "non_field_errors" else where)
    if isinstance(detail, list) and detail:
        for index, value in enumerate(detail):
            if value:
                inner = f"{path}[{index}]" if isinstance(value, (dict, list)) and path else path
                return _first_message(value, inner)
    text = str(detail)
    return f"{path}: {text}" if path else text
