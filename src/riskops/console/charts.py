"""Charts drawn on the server as SVG: no script and no library, every text escaped, scaled to any width by its
viewBox, and named for screen readers (a title, a description, and a title on every point)."""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from riskops.svg import GRID, INK, LINE, Frame

# The drawing's own units; the browser scales them to the width it has.
FRAME = Frame(width=400, height=240, left=44, right=16, top=12, bottom=52, font=14)
HEIGHT, LEFT, TOP, FONT = FRAME.height, FRAME.left, FRAME.top, FRAME.font


@dataclass(frozen=True)
class Point:
    at: datetime
    value: int
    color: str
    label: str  # what the point says when hovered or read aloud: its date, value and level


def line_chart(
    points: Sequence[Point], *, top: int, chart_id: str, title: str, description: str, x_label: str, y_label: str,
    day: Callable[[datetime], str],
) -> Markup:  # fmt: skip
    """Values over time from 0 to `top`, the points joined in time order; `day` writes an axis date."""
    plot_w, plot_h = FRAME.plot_w, FRAME.plot_h
    ordered = sorted(points, key=lambda p: p.at)
    start = ordered[0].at.timestamp() if ordered else 0.0
    span = (ordered[-1].at.timestamp() - start) if ordered else 0.0

    def x(moment: datetime) -> float:  # a lone point, or points at one moment, stand in the middle
        return LEFT + (plot_w / 2 if span <= 0 else plot_w * (moment.timestamp() - start) / span)

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * value / max(top, 1)

    parts = [FRAME.opening(chart_id, title, description)]
    for tick in _ticks(top):
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + FONT / 3:.1f}" text-anchor="end">{tick}</text>'
        )
    parts.append(FRAME.axes())
    if ordered:
        first, last = ordered[0].at, ordered[-1].at
        below = TOP + plot_h + FONT + 4
        if span <= 0:
            parts.append(f'<text x="{x(first):.1f}" y="{below}" text-anchor="middle">{escape(day(first))}</text>')
        else:  # the first and the last date, each kept inside the drawing
            parts.append(f'<text x="{LEFT}" y="{below}" text-anchor="start">{escape(day(first))}</text>')
            parts.append(f'<text x="{LEFT + plot_w}" y="{below}" text-anchor="end">{escape(day(last))}</text>')
        path = " ".join(f"{x(p.at):.1f},{y(p.value):.1f}" for p in ordered)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>')
        for p in ordered:
            parts.append(
                f'<circle cx="{x(p.at):.1f}" cy="{y(p.value):.1f}" r="5" fill="{escape(p.color)}" stroke="{INK}">'
                f"<title>{escape(p.label)}</title></circle>"
            )
    parts.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text transform="translate({FONT},{TOP + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text></svg>"
    )
    return Markup("".join(parts))  # built above from numbers and escaped text only


def _ticks(top: int) -> list[int]:
    """About five round steps from 0 up to `top`, `top` included."""
    step = max(1, math.ceil(top / 5))
    return sorted({*range(0, top, step), top})
