"""Charts drawn on the server as inline SVG: no script, no CDN, colours from admin.css classes."""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape


def _fmt(n: int) -> str:
    return f"{n:,}"


def funnel_svg(stages: list[tuple[str, int]], title: str, chart_id: str = "funnel") -> Markup:
    """Horizontal bars, one per funnel stage, widths relative to the largest stage."""
    width, label_w, row_h, gap = 640, 190, 30, 8
    bar_w = width - label_w - 90
    height = len(stages) * (row_h + gap) + gap
    top = max((n for _, n in stages), default=0) or 1
    parts = [
        f'<svg class="chart chart-funnel" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
    ]
    for i, (label, value) in enumerate(stages):
        y = gap + i * (row_h + gap)
        w = max(2, round(bar_w * value / top)) if value else 0
        parts.append(
            f'<text class="chart-label" x="{label_w - 8}" y="{y + row_h / 2}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(label)}</text>'
        )
        parts.append(f'<rect class="chart-track" x="{label_w}" y="{y}" width="{bar_w}" height="{row_h}" rx="3"/>')
        if w:
            parts.append(f'<rect class="chart-bar bar-{i}" x="{label_w}" y="{y}" width="{w}" height="{row_h}" rx="3"/>')
        parts.append(
            f'<text class="chart-value" x="{label_w + bar_w + 8}" y="{y + row_h / 2}" '
            f'dominant-baseline="middle">{_fmt(value)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every dynamic value above is escaped or numeric


def daily_svg(points: list[tuple[date, int]], title: str, chart_id: str = "daily") -> Markup:
    """Vertical bars per day with a y-axis maximum and first/last date labels."""
    width, height, left, bottom, top_pad = 640, 220, 44, 28, 12
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    peak = max((n for _, n in points), default=0)
    scale = peak or 1
    step = plot_w / max(1, len(points))
    bar = max(1.0, step * 0.7)
    parts = [
        f'<svg class="chart chart-daily" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<line class="chart-axis" x1="{left}" y1="{top_pad + plot_h}" x2="{width - 8}" y2="{top_pad + plot_h}"/>',
        f'<line class="chart-grid" x1="{left}" y1="{top_pad}" x2="{width - 8}" y2="{top_pad}"/>',
        f'<text class="chart-tick" x="{left - 6}" y="{top_pad}" text-anchor="end" dominant-baseline="middle">'
        f"{_fmt(peak)}</text>",
        f'<text class="chart-tick" x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end" '
        f'dominant-baseline="middle">0</text>',
    ]
    for i, (day, value) in enumerate(points):
        h = plot_h * value / scale
        x = left + i * step + (step - bar) / 2
        parts.append(
            f'<rect class="chart-bar bar-0" x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bar:.1f}" '
            f'height="{h:.1f}"><title>{day.isoformat()}: {_fmt(value)}</title></rect>'
        )
    if points:
        parts.append(
            f'<text class="chart-tick" x="{left}" y="{height - 8}">{points[0][0]:%b %d}</text>'
            f'<text class="chart-tick" x="{width - 8}" y="{height - 8}" text-anchor="end">{points[-1][0]:%b %d}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every dynamic value above is escaped or numeric
