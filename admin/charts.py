"""Charts drawn on the server as inline SVG: no script, no CDN, colours from admin.css classes.

The SVGs have no viewBox: shapes are placed in percentages of the width and text in CSS pixels, so a chart
fills a phone or a laptop and its labels stay at their real size (12-13 px) instead of shrinking with it.
"""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

from core.formatting import plural


def _fmt(n: int) -> str:
    return f"{n:,}"


def _pct(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + "%"


def funnel_svg(stages: list[tuple[str, int]], title: str, chart_id: str = "funnel") -> Markup:
    """One row per funnel stage: its name and number above a bar as wide as its share of the largest stage."""
    row_h, bar_h, bar_top = 46, 16, 22
    height = len(stages) * row_h + 4
    top = max((n for _, n in stages), default=0) or 1
    parts = [
        f'<svg class="chart chart-funnel" width="100%" height="{height}" role="img" '
        f'aria-labelledby="{chart_id}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
    ]
    for i, (label, value) in enumerate(stages):
        y = i * row_h + 4
        share = value / top * 100 if value else 0
        parts.append(f'<text class="chart-label" x="0" y="{y + 14}">{escape(label)}</text>')
        parts.append(f'<text class="chart-value" x="100%" y="{y + 14}" text-anchor="end">{_fmt(value)}</text>')
        parts.append(f'<rect class="chart-track" x="0" y="{y + bar_top}" width="100%" height="{bar_h}" rx="3"/>')
        if value:
            parts.append(
                f'<rect class="chart-bar bar-{i}" x="0" y="{y + bar_top}" width="{_pct(max(share, 0.5))}" '
                f'height="{bar_h}" rx="3"/>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every dynamic value above is escaped or numeric


def _tick_days(count: int) -> tuple[int, int]:
    """(major, minor) label spacing in days: majors show on every screen, minors only where there is room."""
    if count <= 7:
        return 1, 1
    if count <= 31:
        return 7, 7
    return 14, 7


def daily_svg(points: list[tuple[date, int]], title: str, chart_id: str = "daily") -> Markup:
    """A bar per day, the days named along the axis (counted back from today) and the busiest day's count on top."""
    height, top, plot_h = 210, 26, 150
    base = top + plot_h
    peak = max((n for _, n in points), default=0)
    scale = peak or 1
    count = max(1, len(points))
    step = 100 / count
    bar = step * (0.7 if count <= 31 else 0.8)
    parts = [
        f'<svg class="chart chart-daily" width="100%" height="{height}" role="img" '
        f'aria-labelledby="{chart_id}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<text class="chart-tick" x="0" y="12">Busiest day: {plural(peak, "signup")}</text>',
        f'<line class="chart-grid" x1="0" y1="{top}" x2="100%" y2="{top}"/>',
        f'<line class="chart-axis" x1="0" y1="{base}" x2="100%" y2="{base}"/>',
    ]
    major, minor = _tick_days(count)
    last = len(points) - 1
    for i, (day, value) in enumerate(points):
        h = plot_h * value / scale
        x = i * step + (step - bar) / 2
        if value:
            parts.append(
                f'<rect class="chart-bar bar-0" x="{_pct(x)}" y="{base - h:.1f}" width="{_pct(bar)}" '
                f'height="{max(h, 1):.1f}"><title>{day:%a, %b %-d}: {_fmt(value)}</title></rect>'
            )
        back = last - i
        if back % minor:
            continue
        centre = x + bar / 2
        anchor, at = "middle", centre
        if centre < 8:
            anchor, at = "start", x
        elif centre > 92:
            anchor, at = "end", x + bar
        label = f"{day:%a %-d}" if count <= 7 else f"{day:%b %-d}"
        kind = "chart-tick" if back % major == 0 else "chart-tick chart-tick-minor"
        parts.append(
            f'<line class="chart-axis" x1="{_pct(centre)}" y1="{base}" x2="{_pct(centre)}" y2="{base + 5}"/>'
            f'<text class="{kind}" x="{_pct(at)}" y="{base + 20}" text-anchor="{anchor}">{label}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every dynamic value above is escaped or numeric
