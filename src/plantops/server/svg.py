"""Charts as SVG text, drawn on the server (no script, no CDN). Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str,
    limit: float | None = None,
    limit_label: str = "",
    width: int = 640,
) -> str:
    """Horizontal bars, one per (label, value); ``limit`` draws a dashed objective line
    and colours the bars beyond it."""
    bar, gap, left, right, top = 16, 6, 150, 90, 28
    height = top + len(items) * (bar + gap) + 10
    top_value = max([v for _, v in items] + [limit or 0.0, 1e-9])
    scale = (width - left - right) / top_value
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(items):
        y = top + i * (bar + gap)
        over = limit is not None and value > limit
        parts.append(
            f'<text x="{left - 6}" y="{y + bar - 4}" text-anchor="end" class="chart-label">'
            f"{escape(label[:22])}</text>"
            f'<rect x="{left}" y="{y}" width="{max(value * scale, 1):.1f}" height="{bar}" '
            f'class="{"bar-over" if over else "bar"}"><title>{escape(label)}: {value:,.2f} '
            f"{escape(unit)}</title></rect>"
            f'<text x="{left + value * scale + 4:.1f}" y="{y + bar - 4}" class="chart-value">'
            f"{value:,.1f} {escape(unit)}</text>"
        )
    if limit is not None:
        x = left + limit * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 6}" class="limit"/>'
            f'<text x="{x + 3:.1f}" y="{top - 8}" class="chart-label">{escape(limit_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
