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


def dependency_graph(
    nodes: Sequence[tuple[str, str, int, str]],
    edges: Sequence[tuple[str, str]],
    *,
    title: str,
) -> str:
    """A layered drawing of a dependency graph: ``nodes`` are (name, label, depth,
    tooltip), ``edges`` (dependent, dependency). Depth 0 (depends on nothing drawn) is
    the bottom row, each row above one level deeper; a row is sorted by name, so the
    same graph always gives the same picture. Standalone: presentation attributes, no
    stylesheet, every text escaped."""
    box_w, box_h, gap_x, gap_y, margin, top = 190, 30, 24, 60, 16, 36
    depth_max = max((d for _, _, d, _ in nodes), default=0)
    rows: dict[int, list[tuple[str, str, int, str]]] = {}
    for node in sorted(nodes, key=lambda n: n[0]):
        rows.setdefault(node[2], []).append(node)
    widest = max((len(r) for r in rows.values()), default=1)
    width = max(2 * margin + widest * (box_w + gap_x) - gap_x, 320)
    height = top + (depth_max + 1) * (box_h + gap_y) - gap_y + margin
    where: dict[str, tuple[float, float]] = {}
    for depth, row in rows.items():
        used = len(row) * (box_w + gap_x) - gap_x
        x0 = (width - used) / 2
        row_y = float(top + (depth_max - depth) * (box_h + gap_y))
        for i, (name, *_rest) in enumerate(row):
            where[name] = (x0 + i * (box_w + gap_x), row_y)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        'font-family="system-ui, sans-serif">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#5b6573"/></marker></defs>',
        f'<text x="{margin}" y="20" font-size="13" font-weight="600">{escape(title)}</text>',
    ]
    for src, dst in sorted(edges):
        if src not in where or dst not in where:
            continue
        (x1, y1), (x2, y2) = where[src], where[dst]
        parts.append(
            f'<line class="edge" data-from="{escape(src)}" data-to="{escape(dst)}" '
            f'x1="{x1 + box_w / 2:.1f}" y1="{y1 + box_h:.1f}" x2="{x2 + box_w / 2:.1f}" '
            f'y2="{y2:.1f}" stroke="#5b6573" stroke-width="1.2" marker-end="url(#arrow)"/>'
        )
    for name, label, depth, tip in sorted(nodes, key=lambda n: n[0]):
        x, y = where[name]
        parts.append(
            f'<g class="node" data-addon="{escape(name)}" data-depth="{depth}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{box_h}" rx="4" '
            'fill="#ffffff" stroke="#2f5fb3"/>'
            f'<text x="{x + 8:.1f}" y="{y + 19:.1f}" font-size="11">{escape(label[:30])}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def budget_chart(
    points: Sequence[tuple[str, float | None]],
    *,
    title: str,
    width: int = 640,
    height: int = 180,
) -> str:
    """The error budget left over a window: one bar per (label, percent left; None: no
    data yet), a polyline through the bars' tops, and the zero line (below it the budget
    is overspent). Standalone: presentation attributes, every text escaped."""
    left, right, top, bottom = 44, 12, 28, 24
    values = [v for _, v in points if v is not None]
    high = max([100.0, *values])
    low = min([0.0, *values])
    span = high - low or 1.0
    plot_h = height - top - bottom
    step = (width - left - right) / max(len(points), 1)

    def y(v: float) -> float:
        return top + (high - v) / span * plot_h

    zero = y(0.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart budget" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
        f'<text x="{left - 4}" y="{y(100.0) + 4:.1f}" text-anchor="end">100 %</text>',
        f'<text x="{left - 4}" y="{zero + 4:.1f}" text-anchor="end">0 %</text>',
    ]
    line: list[str] = []
    for i, (label, value) in enumerate(points):
        x = left + i * step
        if value is None:
            parts.append(
                f'<rect class="day" data-day="{escape(label)}" data-remaining="" x="{x:.1f}" '
                f'y="{zero - 1:.1f}" width="{max(step - 2, 1):.1f}" height="1" fill="#c8ccd2">'
                f"<title>{escape(label)}: no probe run yet</title></rect>"
            )
            continue
        y0, y1 = sorted((zero, y(value)))
        colour = "#2f7d32" if value > 25 else "#c77700" if value > 0 else "#b3261e"
        parts.append(
            f'<rect class="day" data-day="{escape(label)}" data-remaining="{value:.1f}" '
            f'x="{x:.1f}" y="{y0:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{max(y1 - y0, 1):.1f}" fill="{colour}" fill-opacity="0.35">'
            f"<title>{escape(label)}: {value:.1f} % of the budget left</title></rect>"
        )
        line.append(f"{x + step / 2:.1f},{y(value):.1f}")
    parts.append(
        f'<line x1="{left}" y1="{zero:.1f}" x2="{width - right}" y2="{zero:.1f}" '
        'stroke="#5b6573" stroke-dasharray="4 3"/>'
    )
    if line:
        parts.append(
            f'<polyline class="remaining" points="{" ".join(line)}" fill="none" '
            'stroke="#2f5fb3" stroke-width="1.5"/>'
        )
    if points:
        parts.append(
            f'<text x="{left}" y="{height - 6}">{escape(points[0][0])}</text>'
            f'<text x="{width - right}" y="{height - 6}" text-anchor="end">'
            f"{escape(points[-1][0])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
