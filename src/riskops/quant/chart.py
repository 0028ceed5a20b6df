"""A loss exceedance curve drawn on the server as SVG, in the console's charts' manner: no script, every text
escaped, scaled by its viewBox, titled for screen readers. Losses on a log scale, the chance of losing more from
0 to 1; the loss tolerance's points drawn against it (breached ones in red)."""

import math
from collections.abc import Sequence

from markupsafe import escape

from riskops.svg import GRID, INK, LINE, Frame

FRAME = Frame(width=480, height=300, left=52, right=16, top=36, bottom=52, font=12)
WIDTH, HEIGHT, LEFT, TOP, FONT = FRAME.width, FRAME.height, FRAME.left, FRAME.top, FRAME.font
WITHIN, BREACHED = "#1b7f3b", "#b3261e"
LEAST_POWER = -3


def short(amount: float) -> str:
    """1500000 as 1.5M: what fits under an axis tick."""
    for size, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(amount) >= size:
            return f"{amount / size:.3g}{unit}"
    return f"{amount:.3g}"


def exceedance_svg(
    curve: Sequence[tuple[float, float]], tolerance: Sequence[tuple[float, float, bool]], *, title: str,
    currency: str,
) -> str:  # fmt: skip
    """`curve`: (loss, P(a year loses more)); `tolerance`: (loss, most chance allowed, breached)."""
    plot_w, plot_h = FRAME.plot_w, FRAME.plot_h
    losses = [x for x, _ in curve if x > 0] + [x for x, _, _ in tolerance]
    low = math.log10(min(losses)) if losses else 0.0
    high = math.log10(max(losses)) if losses else 1.0
    # Below a thousandth of the currency's unit is no loss worth an axis: drawn at its left edge.
    low = max(math.floor(low), LEAST_POWER)
    high = max(math.ceil(high), low + 1)

    def x(loss: float) -> float:
        return LEFT + plot_w * (math.log10(max(loss, 10.0**low)) - low) / (high - low)

    def y(probability: float) -> float:
        return TOP + plot_h * (1 - probability)

    description = f"The chance that a year's loss exceeds each amount ({currency}), on a logarithmic scale" + (
        f"; {len(tolerance)} loss tolerance points." if tolerance else "."
    )
    parts = [
        FRAME.opening("lec", title, description),
        f'<text x="{WIDTH / 2}" y="{FONT + 6}" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
    ]
    for step in range(0, 11, 2):
        p = step / 10
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(p):.1f}" y2="{y(p):.1f}" stroke="{GRID}"/>'
            f'<text x="{LEFT - 6}" y="{y(p) + FONT / 3:.1f}" text-anchor="end">{step * 10}%</text>'
        )
    for power in range(low, high + 1):
        at = x(10.0**power)
        parts.append(
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{TOP}" y2="{TOP + plot_h}" stroke="{GRID}"/>'
            f'<text x="{at:.1f}" y="{TOP + plot_h + FONT + 4}" text-anchor="middle">{escape(short(10.0**power))}</text>'
        )
    if curve:
        path = " ".join(f"{x(loss):.1f},{y(p):.1f}" for loss, p in curve if loss > 0)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    if tolerance:
        ordered = sorted(tolerance)
        path = " ".join(f"{x(loss):.1f},{y(p):.1f}" for loss, p, _ in ordered)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{INK}" stroke-dasharray="4 3"/>')
        for loss, p, breached in ordered:
            word = "breached" if breached else "within"
            label = f"Tolerance: at most {p:.0%} chance of losing over {short(loss)} {currency} ({word})"
            parts.append(
                f'<circle cx="{x(loss):.1f}" cy="{y(p):.1f}" r="5" fill="{BREACHED if breached else WITHIN}">'
                f"<title>{escape(label)}</title></circle>"
            )
    parts.append(
        FRAME.axes() + f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
        f"{escape(f'Loss in a year ({currency}, log scale)')}</text>"
        f'<text transform="translate({FONT},{TOP + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
        "Chance of losing more</text></svg>"
    )
    return "".join(parts)
