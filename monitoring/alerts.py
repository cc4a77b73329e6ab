"""Alerts: stored episodes, told once when they start and once when they resolve.

The original design logged an alert on every five-minute health check for as long as a condition lasts.
Here an `Alert` row exists per episode (one active row per key, enforced by the database);
raising an active alert again only updates it, so channels hear "started" and "resolved"
once each, plus "escalated" (warning -> critical) or "deescalated" (critical -> warning) once
per change of level within the episode. Channels: the log always, e-mail to ZENITH_ALERT_EMAILS through Django's mail
settings, and a Slack-compatible JSON webhook at ZENITH_ALERT_WEBHOOK_URL.
"""

from __future__ import annotations

import json
import logging
import urllib.request

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring import registry
from monitoring.models import Alert, AlertLevel

logger = logging.getLogger("zenith.alerts")

WEBHOOK_TIMEOUT = 5


LEVEL_RANK = {AlertLevel.WARNING: 1, AlertLevel.CRITICAL: 2}


def raise_alert(key: str, level: str, message: str, details: dict | None = None) -> Alert:
    """Starts an episode for `key`, or updates the active one. A new level is told to the
    channels (once per change); a new message or value at the same level is not."""
    details = details or {}
    active = Alert.objects.filter(key=key, resolved_at__isnull=True).first()
    if active:
        if active.level != level:
            # Compare-and-set on the old level: when several processes see the change at once,
            # one of them wins and notifies.
            previous = active.level
            changed = Alert.objects.filter(pk=active.pk, level=previous, resolved_at__isnull=True).update(
                level=level, message=message, details=details)
            if changed:
                active.level, active.message, active.details = level, message, details
                phase = "escalated" if LEVEL_RANK.get(level, 0) > LEVEL_RANK.get(previous, 0) else "deescalated"
                _notify(active, phase, previous=previous)
            else:
                active.refresh_from_db()
        elif (active.message, active.details) != (message, details):
            active.message, active.details = message, details
            active.save(update_fields=["message", "details"])
        return active
    try:
        with transaction.atomic():
            alert = Alert.objects.create(key=key, level=level, message=message, details=details)
    except IntegrityError:  # another process raised it a moment ago
        return Alert.objects.get(key=key, resolved_at__isnull=True)
    _notify(alert, "started")
    return alert


def resolve_alert(key: str, message: str = "") -> Alert | None:
    updated = Alert.objects.filter(key=key, resolved_at__isnull=True).update(resolved_at=timezone.now())
    if not updated:
        return None
    alert = Alert.objects.filter(key=key).order_by("-started_at").first()
    if alert is not None:
        _notify(alert, "resolved", message)
    return alert


def breaker_transition(data_type: str, event: str, error_rate: float, volume: int) -> None:
    key = f"breaker:{data_type}"
    if event in ("opened", "reopened"):
        raise_alert(key, AlertLevel.CRITICAL,
                    f"Circuit breaker for '{data_type}' opened: {error_rate:.0%} of {volume} items failed"
                    if event == "opened" else f"Circuit breaker for '{data_type}' re-opened: the probe batch failed",
                    {"data_type": data_type, "error_rate": error_rate, "volume": volume})
    elif event == "closed":
        resolve_alert(key, f"Circuit breaker for '{data_type}' closed: the probe batch succeeded")


def resolve_closed_breakers() -> list[str]:
    """Breaker alerts whose breaker is no longer open (Redis lost its state, or an operator
    forced it closed) are resolved: the probe that would have closed them never runs."""
    resolved = []
    for key in Alert.objects.filter(key__startswith="breaker:", resolved_at__isnull=True).values_list("key", flat=True):
        data_type = key.removeprefix("breaker:")
        if registry.breaker_is_closed(data_type):
            if resolve_alert(key, f"Circuit breaker for '{data_type}' is closed again (its state was reset)"):
                resolved.append(data_type)
    return resolved


def _notify(alert: Alert, phase: str, note: str = "", previous: str = "") -> None:
    """`phase`: started, escalated, deescalated or resolved."""
    if phase == "resolved":
        text = f"[RESOLVED] {note or alert.message}"
    elif previous:
        text = f"[{alert.level.upper()}] {alert.message} (was {previous})"
    else:
        text = f"[{alert.level.upper()}] {alert.message}"
    channels = ["log"]
    log = logger.info if phase == "resolved" else logger.warning
    log(text, extra={"event": f"alert.{phase}", "alert_key": alert.key, "level": alert.level,
                     "previous_level": previous or None, "details": alert.details})
    if settings.ZENITH_ALERT_EMAILS:
        try:
            send_mail(f"Zenith alert: {text[:120]}", f"{text}\n\n{json.dumps(alert.details, indent=2, default=str)}",
                      settings.DEFAULT_FROM_EMAIL, settings.ZENITH_ALERT_EMAILS)
            channels.append("email")
        except Exception:
            logger.exception("alert e-mail failed")
    if settings.ZENITH_ALERT_WEBHOOK_URL:
        body = {"text": text, "alert": {"key": alert.key, "level": alert.level, "phase": phase,
                                        "previous_level": previous or None,
                                        "message": alert.message, "details": alert.details,
                                        "started_at": alert.started_at.isoformat(),
                                        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None}}
        try:
            request = urllib.request.Request(settings.ZENITH_ALERT_WEBHOOK_URL,
                                             data=json.dumps(body, default=str).encode(),
                                             headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
                response.read()
            channels.append("webhook")
        except Exception:
            logger.exception("alert webhook failed")
    Alert.objects.filter(pk=alert.pk).update(notified=[*alert.notified, f"{phase}:{'+'.join(channels)}"])
