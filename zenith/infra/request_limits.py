"""Request bodies refused on their declared length, before anything reads them.

Every upload path (the API's submit and preview, the upload page, mapping files) would
otherwise receive and spool a body Zenith will refuse anyway, and only then compare its size:
a client could keep a thread busy and a disk filling for nothing. This middleware runs before
anything touches the body (CSRF, sessions, DRF's parsers), so the answer is a 413 naming
ZENITH_MAX_UPLOAD_BYTES as soon as the headers are in. The web server applies the same limit
(zenith/infra/gunicorn_worker.py) and hands such a request over without waiting for its body.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

# Room for the multipart envelope and the form fields around a file of the largest size.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


def max_request_bytes() -> int:
    """The largest request body accepted anywhere."""
    return settings.ZENITH_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES


def too_large_message() -> str:
    return (f"The request body is larger than {settings.ZENITH_MAX_UPLOAD_BYTES // (1024 * 1024)} MB "
            "(ZENITH_MAX_UPLOAD_BYTES).")


class DeclaredLengthMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                return _refuse(request, 400, "bad_request", f"Content-Length {declared[:40]!r} is not a length.")
            if length > max_request_bytes():
                return _refuse(request, 413, "too_large", too_large_message())
        return self.get_response(request)


def _refuse(request: HttpRequest, status: int, code: str, detail: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail, "code": code}, status=status)
    return HttpResponse(detail + "\n", status=status, content_type="text/plain; charset=utf-8")
