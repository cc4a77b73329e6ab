"""The analysis charts, server-rendered as inline SVG like jobs/web/charts.py: findings over
time, the amounts distribution with the outliers marked, Benford's observed against expected
digit shares.

Each chart is an image with a name and a description (`role="img"`, `<title>`, `<desc>`, tied
by `aria-labelledby`) that says what it shows in words; the templates put the same numbers in
a table next to it, so nothing is only in the picture. Colours come from classes in
static/zenith/app.css (the Content-Security-Policy refuses style attributes) and every mark
that carries meaning also has a `<title>` of its own, which a browser shows on hover.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 26, 40
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
SEVERITIES = ("high", "medium", "low")


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def _money(value: Decimal | float) -> str:
    """An axis label for an amount: 0.01, 5, 200, 10k, 2M."""
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"


def _frame(chart_id: str, title: str, desc: str, body: list[str], extra_class: str = "") -> SafeString:
    return mark_safe(
        f'<svg class="chart analysis-chart{extra_class}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" id="{chart_id}">'
        f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(desc)}</desc>'
        + "".join(body) + "</svg>")


def _axes(max_y: float, y_label: str) -> list[str]:
    base = TOP + PLOT_H
    parts = [f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" class="axis"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" class="axis"/>']
    for fraction in (0.5, 1.0):
        y = base - fraction * PLOT_H
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="label">'
                     f'{escape(_number(max_y * fraction))}</text>')
    parts.append(f'<text x="{LEFT}" y="{TOP - 10}" class="label">{escape(y_label)}</text>')
    return parts


def _x_label(x: float, text: str, anchor: str = "middle") -> str:
    return f'<text x="{x:.1f}" y="{TOP + PLOT_H + 16}" text-anchor="{anchor}" class="label">{escape(text)}</text>'


def _legend(items: Sequence[tuple[str, str]]) -> list[str]:
    parts, x = [], WIDTH - RIGHT
    for css, label in reversed(items):
        x -= 8 * len(label) + 22
        parts.append(f'<rect x="{x}" y="{TOP - 19}" width="10" height="10" class="{css}"/>'
                     f'<text x="{x + 14}" y="{TOP - 10}" class="label">{escape(label)}</text>')
    return parts


def period_label(start: dt.date, unit: str | None) -> str:
    if unit == "month":
        return start.strftime("%Y-%m")
    if unit == "week":
        return f"week of {start.isoformat()}"
    return start.isoformat()


def findings_over_time_svg(series: dict, chart_id: str) -> SafeString:
    """Stacked bars of findings per period (by the flagged record's date), one colour per
    severity."""
    periods = series.get("periods") or []
    if not periods:
        return mark_safe('<p class="muted">No finding to chart.</p>')
    unit = series.get("unit")
    totals = [sum(p[s] for s in SEVERITIES) for p in periods]
    max_y = max(totals) or 1
    slot = PLOT_W / len(periods)
    width = max(1.0, slot * 0.8)
    body = _axes(max_y, "findings") + _legend([(f"sev-{s}", s) for s in SEVERITIES])
    base = TOP + PLOT_H
    for i, period in enumerate(periods):
        x = LEFT + i * slot + (slot - width) / 2
        y = base
        label = period_label(period["start"], unit)
        for severity in reversed(SEVERITIES):
            count = period[severity]
            if not count:
                continue
            height = count / max_y * PLOT_H
            y -= height
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
                        f'class="sev-{severity}"><title>{escape(label)}: {count:,} {severity}</title></rect>')
    body.append(_x_label(LEFT, period_label(periods[0]["start"], unit), "start"))
    if len(periods) > 1:
        body.append(_x_label(WIDTH - RIGHT, period_label(periods[-1]["start"], unit), "end"))
    peak = max(range(len(periods)), key=lambda i: totals[i])
    desc = (f"{sum(totals):,} findings over {len(periods)} {unit}s from {period_label(periods[0]['start'], unit)} "
            f"to {period_label(periods[-1]['start'], unit)}; the most, {totals[peak]:,}, in "
            f"{period_label(periods[peak]['start'], unit)}. High: {sum(p['high'] for p in periods):,}, medium: "
            f"{sum(p['medium'] for p in periods):,}, low: {sum(p['low'] for p in periods):,}.")
    return _frame(chart_id, f"Findings per {unit}, by severity", desc, body)


def amounts_svg(distribution: dict, chart_id: str) -> SafeString:
    """Bars of records per 1-2-5 amount bin on a logarithmic axis; each per-account outlier a
    red mark under the axis at its amount, and the bins holding outliers outlined."""
    bins = distribution.get("bins") or []
    if not bins:
        return mark_safe('<p class="muted">No amount to chart.</p>')
    low, high = math.log10(float(bins[0]["low"])), math.log10(float(bins[-1]["high"]))
    span = (high - low) or 1.0

    def x_of(amount: Decimal | float) -> float:
        return LEFT + (math.log10(float(amount)) - low) / span * PLOT_W

    max_y = max(b["records"] for b in bins) or 1
    base = TOP + PLOT_H
    body = _axes(max_y, "records") + _legend([("amount-bar", "records"), ("outlier-mark", "per-account outlier")])
    for b in bins:
        x0, x1 = x_of(b["low"]), x_of(b["high"])
        height = b["records"] / max_y * PLOT_H
        css = "amount-bar has-outliers" if b["outliers"] else "amount-bar"
        outliers = f", {b['outliers']:,} of them outliers" if b["outliers"] else ""
        body.append(f'<rect x="{x0 + 0.5:.1f}" y="{base - height:.1f}" width="{max(0.5, x1 - x0 - 1):.1f}" '
                    f'height="{height:.1f}" class="{css}"><title>{_money(b["low"])} to {_money(b["high"])}: '
                    f'{b["records"]:,} records{outliers}</title></rect>')
    for mark in distribution.get("marks") or []:
        amount = abs(Decimal(mark["amount"]))
        if not amount:
            continue
        x = x_of(amount)
        body.append(f'<path d="M{x:.1f} {base + 2} l-4 8 h8 z" class="outlier-mark"><title>outlier '
                    f'{escape(mark["external_id"])}: {escape(format(Decimal(mark["amount"]), "f"))} '
                    f'{escape(mark["currency"])} (account {escape(mark["account"] or "none")})</title></path>')
    step = max(1, len(bins) // 6)
    for i in range(0, len(bins) + 1, step):
        edge = bins[i]["low"] if i < len(bins) else bins[-1]["high"]
        body.append(f'<text x="{x_of(edge):.1f}" y="{base + 24}" text-anchor="middle" class="label">'
                    f'{escape(_money(edge))}</text>')
    busiest = max(bins, key=lambda b: b["records"])
    desc = (f"{distribution['records']:,} amounts (absolute values, every currency) on a logarithmic scale from "
            f"{_money(bins[0]['low'])} to {_money(bins[-1]['high'])}; most, {busiest['records']:,}, between "
            f"{_money(busiest['low'])} and {_money(busiest['high'])}. {distribution['outliers']:,} per-account "
            f"outliers are marked under the axis.")
    if distribution.get("zero"):
        desc += f" {distribution['zero']:,} amounts of zero are not on the axis."
    return _frame(chart_id, "Distribution of amounts, per-account outliers marked", desc, body)


def benford_svg(test: dict, chart_id: str) -> SafeString:
    """Bars of the observed share of each leading digit (or pair of digits), with Benford's
    expected share as a line of dots."""
    observed, expected = test.get("observed") or {}, test.get("expected") or {}
    if not observed:
        return mark_safe('<p class="muted">Too few amounts for this test.</p>')
    digits = list(expected)
    max_y = max(max(observed.values()), max(expected.values())) or 1
    slot = PLOT_W / len(digits)
    width = max(1.0, slot * 0.7)
    base = TOP + PLOT_H
    body = _axes(max_y * 100, "% of amounts") + _legend([("amount-bar", "observed"), ("expected-mark", "expected")])
    deviating = {d["digit"] for d in test.get("deviating_digits") or []}
    points = []
    for i, digit in enumerate(digits):
        x = LEFT + i * slot + (slot - width) / 2
        height = observed.get(digit, 0) / max_y * PLOT_H
        css = "amount-bar has-outliers" if digit in deviating else "amount-bar"
        note = ", deviates significantly" if digit in deviating else ""
        body.append(f'<rect x="{x:.1f}" y="{base - height:.1f}" width="{width:.1f}" height="{height:.1f}" '
                    f'class="{css}"><title>{escape(digit)}: observed {observed.get(digit, 0):.1%}, expected '
                    f'{expected[digit]:.1%}{note}</title></rect>')
        points.append((x + width / 2, base - expected[digit] / max_y * PLOT_H))
        if len(digits) <= 9 or int(digit) % 10 == 0:
            body.append(_x_label(x + width / 2, digit))
    body.append('<polyline points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '" class="expected-line"/>')
    if len(digits) <= 9:
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="expected-mark"/>' for x, y in points]
    worst = max(digits, key=lambda d: abs(observed.get(d, 0) - expected[d]))
    desc = (f"Benford's law, {test.get('test')}: {test.get('n', 0):,} amounts, {test.get('conformity')} "
            f"(mean absolute deviation {test.get('mad')}). The largest gap is at {worst}: observed "
            f"{observed.get(worst, 0):.1%}, expected {expected[worst]:.1%}. "
            + (f"Significant deviations at {', '.join(sorted(deviating, key=int))}." if deviating
               else "No digit deviates significantly."))
    return _frame(chart_id, f"Benford's law, {test.get('test')}: observed against expected", desc, body)
