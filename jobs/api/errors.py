"""One error shape for the whole API: `{"detail": "<a sentence naming the problem>",
"code": "<stable code>", ...}` with a 4xx status. Service exceptions are mapped here so views
stay thin, and nothing a client sends can surface as a 500 with a traceback."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from ..datatypes.registry import UnknownDataType
from ..readers import InputError
from ..services import JobAlreadyFinished, JobStateError, SubmissionError


def _response(detail: str, code: str, http_status: int, headers: dict | None = None, **extra) -> Response:
    set_rollback()
    return Response({"detail": detail, "code": code, **extra}, status=http_status, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, SubmissionError):
        headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else None
        return _response(exc.message, exc.code, exc.status, headers, **exc.extra)
    if isinstance(exc, UnknownDataType):
        return _response(str(exc), "unknown_data_type", status.HTTP_400_BAD_REQUEST, known_data_types=exc.known)
    if isinstance(exc, InputError):
        return _response(f"The file could not be read: {exc}", "malformed_input", status.HTTP_400_BAD_REQUEST,
                         line=exc.line)
    if isinstance(exc, JobAlreadyFinished):
        return _response(str(exc), "job_finished", status.HTTP_409_CONFLICT, status=exc.status)
    if isinstance(exc, JobStateError):
        return _response(str(exc), "conflict", status.HTTP_409_CONFLICT)
    if isinstance(exc, RequestDataTooBig):
        return _response("The request body is too large; upload the data as a file instead.", "too_large",
                         status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
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
