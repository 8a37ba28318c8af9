"""Bar charts as inline SVG, rendered on the server (no JavaScript, no plotting library).

Only presentation attributes are used (no ``style=``), so the pages' Content-Security-Policy
(style-src 'self') does not block them; every text is escaped.
"""

from __future__ import annotations

import math
from html import escape


def _nice_max(value: int) -> int:
    """A round upper bound for the y axis (1, 2, 5 x 10^n)."""
    if value <= 0:
        return 1
    exp = 10 ** int(math.floor(math.log10(value)))
    for m in (1, 2, 5, 10):
        if m * exp >= value:
            return m * exp
    return 10 * exp


def _ticks(ymax: int) -> list[int]:
    """Distinct whole-number ticks from 0 to ``ymax`` (a count has no half): a fifth of the
    range when that is whole, else half, else every unit."""
    parts = next(p for p in (5, 2, 1) if ymax % p == 0)
    return list(range(0, ymax + 1, ymax // parts))


def bar_chart(
    labels: list[str],
    series: list[tuple[str, list[int], str]],
    *,
    title: str,
    label_every: int = 1,
    width: int = 900,
    height: int = 220,
) -> str:
    """Stacked bars: ``series`` is [(name, values, colour)], one value per label."""
    left, right, top, bottom = 44, 10, 26, 38
    n = max(1, len(labels))
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s[1][i] for s in series) for i in range(len(labels))]
    ymax = _nice_max(max(totals, default=0))
    step = plot_w / n
    bar_w = max(1.0, step * 0.8)
    out = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="16" font-weight="600">{escape(title)}</text>',
    ]
    for tick in _ticks(ymax):
        y = top + plot_h * (1 - tick / ymax)
        out.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#d8dde3" stroke-width="1"/>'
        )
        out.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    for i, label in enumerate(labels):
        x = left + i * step + (step - bar_w) / 2
        base = top + plot_h
        parts = []
        for name, values, colour in series:
            v = values[i]
            if v <= 0:
                continue
            h = plot_h * v / ymax
            base -= h
            parts.append(f"{name} {v}")
            out.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(label)}: {escape(', '.join(parts[-1:]))}</title></rect>"
            )
        if i % label_every == 0:
            out.append(
                f'<text x="{left + i * step + step / 2:.1f}" y="{height - bottom + 14}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    out.append(
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" '
        f'y2="{top + plot_h}" stroke="#8a96a3" stroke-width="1"/>'
    )
    lx = left
    for name, _values, colour in series:
        out.append(
            f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{height - 5}">{escape(name)}</text>'
        )
        lx += 24 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)
