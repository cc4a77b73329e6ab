"""Builders for what tests need again and again: a project with a member, and transaction
records. Each test module names its own ids (so its rows are told apart in a shared database
or a failure message) and passes only what differs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Value = Any | Callable[[int], Any]


def member_project(project_id: str, name: str, username: str):
    """A project created by a new user `username`, who is its owner."""
    from django.contrib.auth import get_user_model

    from jobs.models import Project

    user = get_user_model().objects.create_user(username, password="pw")
    project = Project.objects.create(id=project_id, name=name, created_by=user)
    project.members.add(user, through_defaults={"role": "owner"})
    return project


def transaction_records(n: int, prefix: str, *, start: int = 0, digits: int = 0, date: Value = "2026-01-15",
                        amount: Value = "10.50", currency: Value = "USD", **extra: Value) -> list[dict]:
    """`n` transaction records with ids `prefix` + number (zero-padded to `digits`), numbered
    from `start`. A field given as a function is called with the record's number."""

    def value(given: Value, i: int) -> Any:
        return given(i) if callable(given) else given

    return [{"id": f"{prefix}{i:0{digits}d}" if digits else f"{prefix}{i}", "date": value(date, i),
             "amount": value(amount, i), "currency": value(currency, i),
             **{key: value(given, i) for key, given in extra.items()}}
            for i in range(start, start + n)]
