"""Heat maps of a review snapshot: open risks counted per likelihood x impact cell of the snapshot's matrix."""

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

View = Literal["inherent", "residual"]
VIEWS: tuple[View, ...] = ("inherent", "residual")
FALLBACK_COLOR = "#9e9e9e"

CELL = 72
LEFT = 150
TOP = 48
BOTTOM = 64
AXES = ("Impact", "Likelihood")

CellLink = Callable[[int, int, int, str], tuple[str, str]]
"""(likelihood, impact, count, level) -> (href, label): a cell drawn as a link, on pages that list a cell's risks."""


def grid(content: dict[str, Any], view: View) -> list[list[int]]:
    """Open risks per cell: `grid[likelihood - 1][impact - 1]`, rated by `view`.

    A risk without a residual rating is left out of the residual view; a rating outside the
    matrix's scales (scored with another matrix version) is left out too.
    """
    ratings: Counter[tuple[Any, Any]] = Counter()
    for risk in content.get("risks", []):
        rating = risk.get(view)
        if risk.get("status") == "open" and rating:
            ratings[rating.get("likelihood"), rating.get("impact")] += 1
    return counts_grid(content.get("matrix") or {}, ratings)


def counts_grid(matrix: dict[str, Any], counts: Mapping[tuple[Any, Any], int]) -> list[list[int]]:
    """Counts by (likelihood, impact) laid out as `grid` lays them, the ratings outside the matrix's scales left out."""
    rows, columns = len(matrix.get("likelihood", [])), len(matrix.get("impact", []))
    out = [[0] * columns for _ in range(rows)]
    for (likelihood, impact), n in counts.items():
        if (
            isinstance(likelihood, int)
            and isinstance(impact, int)
            and 1 <= likelihood <= rows
            and 1 <= impact <= columns
        ):
            out[likelihood - 1][impact - 1] += n
    return out


def level_colors(content: dict[str, Any]) -> dict[str, str]:
    """Level name -> "#rrggbb" from the snapshot's matrix."""
    return {lv["name"]: lv.get("color") or FALLBACK_COLOR for lv in (content.get("matrix") or {}).get("levels", [])}


def cell_color(content: dict[str, Any], likelihood: int, impact: int) -> str:
    """The colour of the level of cell (likelihood, impact), both 1-based."""
    matrix = content.get("matrix") or {}
    level = matrix["cells"][likelihood - 1][impact - 1]
    return level_colors(content).get(level, FALLBACK_COLOR)


def text_color(background: str) -> str:
    """Black or white, whichever reads better on `background` ("#rrggbb")."""
    r, g, b = (int(background[i : i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def svg(content: dict[str, Any], view: View, title: str) -> str:
    """A standalone SVG heat map of a snapshot's content."""
    return drawing(content.get("matrix") or {}, grid(content, view), title)


def drawing(
    matrix: dict[str, Any], counts: list[list[int]], title: str, *, link: CellLink | None = None,
    axes: tuple[str, str] = AXES,
) -> str:  # fmt: skip
    """A heat map of counts laid out as `grid` lays them: highest likelihood at the top, impact rising to the right;
    each cell a link where `link` makes one, the axes titled `axes` (impact, likelihood)."""
    content = {"matrix": matrix}
    likelihood, impact = matrix.get("likelihood", []), matrix.get("impact", [])
    width, height = LEFT + CELL * len(impact) + 16, TOP + CELL * len(likelihood) + BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="{width / 2:g}" y="24" text-anchor="middle" font-size="16" font-weight="bold">{escape(title)}</text>',
    ]
    for row, point in enumerate(reversed(likelihood)):
        value = point["value"]
        y = TOP + row * CELL
        label = f"{value} {point['name']}"
        out.append(
            f'<text class="likelihood" x="{LEFT - 8}" y="{y + CELL / 2:g}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(label)}</text>'
        )
        for column, impact_point in enumerate(impact):
            x = LEFT + column * CELL
            fill = cell_color(content, value, impact_point["value"])
            count = counts[value - 1][column]
            level = matrix["cells"][value - 1][column]
            cell = [
                f'<rect class="cell" x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill={quoteattr(fill)} '
                f'stroke="#ffffff" stroke-width="2" data-likelihood="{value}" data-impact="{impact_point["value"]}" '
                f"data-level={quoteattr(level)}/>",
                f'<text class="count" x="{x + CELL / 2:g}" y="{y + CELL / 2:g}" text-anchor="middle" '
                f'dominant-baseline="middle" font-size="18" fill="{text_color(fill)}">{count}</text>',
            ]
            if link is not None:
                href, name = link(value, impact_point["value"], count, level)
                cell = [f"<a href={quoteattr(href)}><title>{escape(name)}</title>", *cell, "</a>"]
            out.extend(cell)
    axis_y = TOP + CELL * len(likelihood) + 18
    for column, point in enumerate(impact):
        label = f"{point['value']} {point['name']}"
        out.append(
            f'<text class="impact" x="{LEFT + column * CELL + CELL / 2:g}" y="{axis_y}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    out.append(
        f'<text x="{LEFT + CELL * len(impact) / 2:g}" y="{axis_y + 28}" text-anchor="middle" '
        f'font-weight="bold">{escape(axes[0])}</text>'
    )
    out.append(
        f'<text x="16" y="{TOP + CELL * len(likelihood) / 2:g}" text-anchor="middle" font-weight="bold" '
        f'transform="rotate(-90 16 {TOP + CELL * len(likelihood) / 2:g})">{escape(axes[1])}</text>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"
