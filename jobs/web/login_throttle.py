"""The client address django-axes counts failed logins by (AXES_CLIENT_IP_CALLABLE).

X-Forwarded-For is believed only as far as ZENITH_TRUSTED_PROXY_COUNT says: each trusted
proxy appends the address it saw, so the client is that many entries from the end. Whatever a
client wrote there itself sits further left and is ignored; with no proxy configured the
header is ignored entirely and the connection's address is used."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    proxies = settings.ZENITH_TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
                     if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")
