"""Template filters of the analyst's pages (jobs/web/results_pages.py)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

register = template.Library()


@register.filter
def money(value: Any) -> str:
    """An amount exactly as stored, grouped, with at least two decimals: 1,234.50, 0.125."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    cents = amount.quantize(Decimal("0.01"))
    return format(cents if cents == amount else amount.normalize(), ",f")
