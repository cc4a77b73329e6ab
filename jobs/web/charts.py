"""Server-side inline SVG charts (no chart library, no CDN)."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 640, 180, 36


def throughput_svg(series: list[tuple[float, float]]) -> SafeString:
    """A line of items/s over seconds since the job started, with labelled axes."""
    if len(series) < 2:
        return mark_safe('<p class="muted">The chart appears once batches have finished.</p>')
    max_x = series[-1][0] or 1.0
    max_y = max(y for _, y in series) or 1.0
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def point(x: float, y: float) -> str:
        return f"{PAD + x / max_x * plot_w:.1f},{HEIGHT - PAD - y / max_y * plot_h:.1f}"

    points = " ".join(point(x, y) for x, y in [(0.0, series[0][1]), *series])
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="Throughput over time: peak {peak} items '
        'per second over {secs} seconds">'
        '<line x1="{p}" y1="{base}" x2="{right}" y2="{base}" class="axis"/>'
        '<line x1="{p}" y1="{p}" x2="{p}" y2="{base}" class="axis"/>'
        '<polyline points="{points}" class="series"/>'
        '<text x="{p}" y="{top_label}" class="label">{peak} items/s</text>'
        '<text x="{right}" y="{bottom_label}" text-anchor="end" class="label">{secs} s</text>'
        '<text x="{p}" y="{bottom_label}" class="label">0 s</text>'
        "</svg>",
        w=WIDTH, h=HEIGHT, p=PAD, base=HEIGHT - PAD, right=WIDTH - PAD, points=points,
        peak=f"{max_y:,.0f}", secs=f"{max_x:,.1f}", top_label=PAD - 8, bottom_label=HEIGHT - PAD + 18,
    )
