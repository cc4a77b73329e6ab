"""One error shape for the whole API: `{"detail": "<a sentence naming the problem>",
"code": "<stable code>", ...}` with a 4xx status. Service errors are mapped by
`jobs.errors.describe`, the mapping the pages, admin and commands use too, so views stay thin
and nothing a client sends surfaces as a 500 with a traceback."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from jobs.errors import describe


def exception_handler(exc, context):
    explained = describe(exc)
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
