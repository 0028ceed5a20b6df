"""A KRI's history as SVG, drawn on the server: no script, every text escaped, titled for screen readers, with the
amber and red thresholds as lines across it."""

from collections.abc import Sequence

from riskops.kris.models import Kri, ValuePoint
from riskops.svg import LINE, Frame

FRAME = Frame(width=480, height=240, left=56, right=16, top=12, bottom=36, font=12)
LEFT, TOP, FONT = FRAME.left, FRAME.top, FRAME.font
AMBER, RED = "#b26b00", "#b00020"


def draw(kri: Kri, points: Sequence[ValuePoint], chart_id: str = "kri") -> str:
    plot_w, plot_h = FRAME.plot_w, FRAME.plot_h
    numbers = [p.value for p in points] + [kri.amber, kri.red]
    low, high = min(numbers), max(numbers)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    low, high = low - pad, high + pad
    start = points[0].at.timestamp() if points else 0.0
    span = (points[-1].at.timestamp() - start) if points else 0.0

    def x(seconds: float) -> float:
        return LEFT + (plot_w / 2 if span <= 0 else plot_w * (seconds - start) / span)

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * (value - low) / (high - low)

    title = f"{kri.reference} {kri.name}"
    described = f"{len(points)} values; amber at {kri.amber:g}, red at {kri.red:g} {kri.unit}".rstrip()
    parts = [FRAME.opening(chart_id, title, described), FRAME.axes()]
    for name, value, color in (("amber", kri.amber, AMBER), ("red", kri.red, RED)):
        parts.append(
            f'<line class="threshold-{name}" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="{color}" stroke-dasharray="6 4"><title>{name}: {value:g}</title></line>'
            f'<text x="{LEFT - 4}" y="{y(value) + FONT / 3:.1f}" text-anchor="end" fill="{color}">{value:g}</text>'
        )
    if points:
        path = " ".join(f"{x(p.at.timestamp()):.1f},{y(p.value):.1f}" for p in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>')
        below = TOP + plot_h + FONT + 6
        parts.append(f'<text x="{LEFT}" y="{below}" text-anchor="start">{points[0].at:%Y-%m-%d}</text>')
        parts.append(f'<text x="{LEFT + plot_w}" y="{below}" text-anchor="end">{points[-1].at:%Y-%m-%d}</text>')
    parts.append("</svg>")
    return "".join(parts)
