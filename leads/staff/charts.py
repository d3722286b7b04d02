"""Server-rendered SVG charts: small, dependency-free, readable at a glance.

Each chart is an <svg role="img"> named by its <title> and summarised by its <desc>; the page
puts a table with the same numbers next to it for screen readers and for exact values.
"""

from collections.abc import Sequence

from markupsafe import Markup, escape

BAR = "#0b5cad"
TEXT = "#1a1a1a"
GRID = "#6b6b6b"
FONT = 'font-family="system-ui, sans-serif"'


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 × a power of ten)."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _open(chart_id: str, width: int, height: int, title: str, desc: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        'preserveAspectRatio="xMinYMin meet">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>'
    )


def column_chart(
    chart_id: str, points: Sequence[tuple[str, float]], *, title: str, desc: str, label_every: int = 0
) -> Markup:
    """Vertical bars over time (for example leads per day), with a y axis and sparse x labels."""
    width, height, left, bottom, top = 720, 260, 44, 40, 12
    plot_w, plot_h = width - left - 8, height - top - bottom
    peak = _nice_max(max((v for _, v in points), default=0))
    n = max(len(points), 1)
    step = plot_w / n
    every = label_every or max(1, round(n / 8))
    parts = [_open(chart_id, width, height, title, desc)]
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="0.5"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" fill="{TEXT}" {FONT}>'
            f"{_number(peak * fraction)}</text>"
        )
    for i, (label, value) in enumerate(points):
        bar_h = plot_h * value / peak
        x = left + i * step
        parts.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{top + plot_h - bar_h:.1f}" width="{max(step * 0.8, 1):.1f}" '
            f'height="{bar_h:.1f}" fill="{BAR}"><title>{escape(label)}: {_number(value)}</title></rect>'
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                f'font-size="12" fill="{TEXT}" {FONT}>{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every interpolated text went through escape())


def bar_chart(
    chart_id: str, rows: Sequence[tuple[str, float]], *, title: str, desc: str, value_format=None
) -> Markup:
    """Horizontal bars, one per category, labelled with the category and its value."""
    fmt = value_format or _number
    label_w, value_w, row_h, width = 210, 70, 26, 720
    height = max(len(rows), 1) * row_h + 8
    plot_w = width - label_w - value_w
    peak = max((v for _, v in rows), default=0) or 1
    parts = [_open(chart_id, width, height, title, desc)]
    for i, (label, value) in enumerate(rows):
        y = 4 + i * row_h
        bar_w = plot_w * value / peak
        short = label if len(label) <= 26 else label[:25] + "…"  # fits the 210 px label column
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" font-size="13" fill="{TEXT}" {FONT}>'
            f"{escape(short)}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{max(bar_w, 1):.1f}" height="{row_h - 8}" fill="{BAR}"/>'
            f'<text x="{label_w + bar_w + 6:.1f}" y="{y + 17}" font-size="13" fill="{TEXT}" {FONT}>'
            f"{escape(fmt(value))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every interpolated text went through escape())


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
