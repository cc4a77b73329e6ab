from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from zenith.infra.logging import new_correlation_id, reset_correlation_id, set_correlation_id

_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HEADER = "X-Correlation-ID"


class CorrelationIdMiddleware:
    """Takes the caller's X-Correlation-ID (or X-Request-ID) when it is sane, else makes one,
    and echoes it on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(HEADER) or request.headers.get("X-Request-ID") or ""
        cid = given if _VALID.match(given) else new_correlation_id()
        request.correlation_id = cid
        token = set_correlation_id(cid)
        try:
            response = self.get_response(request)
        finally:
            reset_correlation_id(token)
        response[HEADER] = cid
        return response
