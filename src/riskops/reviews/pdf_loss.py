"""The board report's quantified loss page: the open register's loss exceedance curve drawn against the loss
tolerance (losses on a log scale), its figures, the tolerance's verdict and the risks that drive a bad year."""

import math
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, String
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, PageBreak, Paragraph, Table, TableStyle

from riskops.quant.chart import LEAST_POWER, short
from riskops.reviews.models import Content

WIDTH, HEIGHT = 170 * mm, 90 * mm
LEFT, BOTTOM, TOP, RIGHT = 16 * mm, 12 * mm, 4 * mm, 4 * mm
LINE, BREACHED, WITHIN = colors.HexColor("#0b57a4"), colors.HexColor("#b3261e"), colors.HexColor("#1b7f3b")


def page(content: Content, body: ParagraphStyle, heading: ParagraphStyle) -> list[Flowable]:
    loss = content.get("quantified_loss")
    if loss is None:  # no estimate, or a snapshot from before losses were quantified
        return []
    figures, currency = loss["figures"], loss["currency"]
    verdict = figures["tolerance"]
    words = {True: "within the loss tolerance", False: "OVER the loss tolerance", None: verdict["reason"]}
    summary = (
        f"{figures['risks']} open risks' simulated years summed ({loss['trials']} trials, seed {loss['seed']}; the "
        f"risks taken as independent), in {currency}: mean {short(figures['mean'])}, P90 {short(figures['p90'])}, "
        f"P95 {short(figures['p95'])}, P99 {short(figures['p99'])}; {words[verdict['within']]}."
    )
    out: list[Flowable] = [
        PageBreak(),
        Paragraph("Quantified loss: what the register could cost in a year", heading),
        Paragraph(escape(summary), body),
        curve(figures, body.fontName),
    ]
    rows: list[list[Any]] = [["Tolerance: loss", "At most", "Simulated", "Breached", "Pushed over by"]]
    for point in verdict["points"]:
        pushed = Paragraph(escape(", ".join(d["risk"] for d in point["drivers"])), body)
        rows.append([
            short(point["loss"]), f"{point['probability']:.1%}", f"{point['simulated']:.1%}",
            "yes" if point["breached"] else "no", pushed,
        ])  # fmt: skip
    if verdict["points"]:
        out.append(_table(rows, [30 * mm, 22 * mm, 22 * mm, 18 * mm, 78 * mm], body.fontName))
    out.append(Paragraph("What drives a bad year (the years above the P95)", heading))
    drivers: list[list[Any]] = [["Risk", "Title", "Mean in those years", "Share"]]
    for driver in figures["drivers"]:
        title = Paragraph(escape(driver["title"]), body)
        drivers.append([driver["risk"], title, short(driver["tail_mean"]), f"{driver['share']:.0%}"])
    out.append(_table(drivers, [20 * mm, 95 * mm, 35 * mm, 20 * mm], body.fontName))
    if figures["not_quantified"]:
        names = ", ".join(r["risk"] for r in figures["not_quantified"][:50])
        more = len(figures["not_quantified"]) - 50
        out.append(Paragraph(escape(f"Not quantified: {names}" + (f" and {more} more" if more > 0 else "")), body))
    return out


def _table(rows: list[list[Any]], widths: list[float], font: str) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))  # fmt: skip
    return table


def curve(figures: dict[str, Any], font: str) -> Drawing:
    """The exceedance curve, the chance of losing more from 0 to 1 against the loss on a log scale, and the
    tolerance's points (red where breached) joined by a grey line."""
    points = [(p["loss"], p["probability"]) for p in figures["curve"] if p["loss"] > 0]
    tolerance = sorted((p["loss"], p["probability"], p["breached"]) for p in figures["tolerance"]["points"])
    losses = [x for x, _ in points] + [x for x, _, _ in tolerance]
    low = max(math.floor(math.log10(min(losses))), LEAST_POWER) if losses else 0
    high = max(math.ceil(math.log10(max(losses))), low + 1) if losses else 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP

    def x(loss: float) -> float:
        return LEFT + plot_w * (math.log10(max(loss, 10.0**low)) - low) / (high - low)

    def y(probability: float) -> float:
        return BOTTOM + plot_h * probability

    drawing = Drawing(WIDTH, HEIGHT)
    for step in range(0, 11, 2):
        drawing.add(Line(LEFT, y(step / 10), LEFT + plot_w, y(step / 10), strokeColor=colors.lightgrey))
        drawing.add(String(LEFT - 2, y(step / 10) - 2, f"{step * 10}%", fontName=font, fontSize=7, textAnchor="end"))
    for power in range(low, high + 1):
        drawing.add(Line(x(10.0**power), BOTTOM, x(10.0**power), BOTTOM + plot_h, strokeColor=colors.lightgrey))
        label = short(10.0**power)
        drawing.add(String(x(10.0**power), BOTTOM - 9, label, fontName=font, fontSize=7, textAnchor="middle"))
    if len(points) > 1:
        drawing.add(PolyLine([c for loss, p in points for c in (x(loss), y(p))], strokeColor=LINE, strokeWidth=1.5))
    if len(tolerance) > 1:
        line = [c for loss, p, _ in tolerance for c in (x(loss), y(p))]
        drawing.add(PolyLine(line, strokeColor=colors.grey, strokeDashArray=[3, 2]))
    for loss, p, breached in tolerance:
        drawing.add(Circle(x(loss), y(p), 3, fillColor=BREACHED if breached else WITHIN, strokeColor=None))
    caption = "Chance of losing more than the loss in a year (loss on a log scale); dots: the loss tolerance"
    drawing.add(String(LEFT, 0, caption, fontName=font, fontSize=7))
    return drawing
