"""A review snapshot as a PDF board report on A4: summary, heat maps, the top open risks, movements and
incidents, with the snapshot's hash in every page's footer."""

import io
from collections import Counter
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, PropertySet, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from riskops.reviews import heatmap
from riskops.reviews.exports import incident_figures, movement_rows, yes_no
from riskops.reviews.models import Content
from riskops.reviews.movements import MOVEMENT_KINDS

PDF_MOVEMENTS_PER_KIND = 25


def open_by_score(content: Content) -> list[dict[str, Any]]:
    """Open risks, highest score first (then reference)."""
    open_risks = [r for r in content.get("risks", []) if r.get("status") == "open"]
    return sorted(open_risks, key=lambda r: (-(r.get("score") or 0), r.get("reference") or ""))


def _p(text: Any, style: PropertySet) -> Paragraph:
    return Paragraph(_escape("" if text is None else str(text)), style)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _grid_table(rows: list[list[Any]], widths: list[float] | None = None, *, header: bool = True) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        style += [("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8), ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)]
    table.setStyle(TableStyle(style))
    return table


def _heat_table(content: Content, view: heatmap.View) -> Table:
    matrix = content.get("matrix") or {}
    likelihood, impact = matrix.get("likelihood", []), matrix.get("impact", [])
    counts = heatmap.grid(content, view)
    rows: list[list[Any]] = [["Likelihood \\ Impact", *(f"{p['value']} {p['name']}" for p in impact)]]
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 7),
        ("FONT", (1, 1), (-1, -1), "Helvetica-Bold", 11),
        ("ALIGN", (1, 0), (-1, -1), "CENTER"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.white),
    ]
    for row, point in enumerate(reversed(likelihood), start=1):
        value = point["value"]
        rows.append([f"{value} {point['name']}", *(counts[value - 1][i] for i in range(len(impact)))])
        for column in range(1, len(impact) + 1):
            fill = heatmap.cell_color(content, value, column)
            style += [
                ("BACKGROUND", (column, row), (column, row), colors.HexColor(fill)),
                ("TEXTCOLOR", (column, row), (column, row), colors.HexColor(heatmap.text_color(fill))),
            ]
    cell = min(20 * mm, (A4[0] - 40 * mm - 30 * mm) / max(len(impact), 1))
    table = Table(
        rows, colWidths=[30 * mm, *(cell for _ in impact)], rowHeights=[10 * mm, *(12 * mm for _ in likelihood)]
    )
    table.setStyle(TableStyle(style))
    table.hAlign = "LEFT"
    return table


def _by_level(content: Content) -> list[tuple[str, int]]:
    """The summary's open risks per level, highest level first (levels the matrix lacks last)."""
    by_level: dict[str, int] = (content.get("summary") or {}).get("by_level") or {}
    order = [lv["name"] for lv in reversed((content.get("matrix") or {}).get("levels", []))]
    return sorted(by_level.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))


def _title(content: Content) -> str:
    cycle = content.get("cycle")
    return f"Quarterly risk review {cycle}" if cycle else "Risk register snapshot"


def render(content: Content, content_hash: str, moves: dict[str, Any]) -> bytes:
    """A board report on A4; the snapshot hash is printed in every page's footer."""
    styles = getSampleStyleSheet()
    body, small, h1, h2 = (
        styles["BodyText"],
        ParagraphStyle("small", fontSize=7, leading=8.5),
        styles["Title"],
        styles["Heading2"],
    )
    summary = content.get("summary") or {}
    matrix = content.get("matrix") or {}
    story: list[Flowable] = [
        _p(_title(content), h1),
        _p(f"Register as of {content.get('as_of')} (period from {content.get('period_start')}).", body),
        _p(f"Matrix: {matrix.get('name')} (version {matrix.get('version')}), appetite {matrix.get('appetite')}.", body),
        Spacer(1, 4 * mm),
        _p("Summary", h2),
    ]
    figures = [
        ["Risks in register", summary.get("risks", 0)],
        ["Open risks", summary.get("open", 0)],
        ["Overdue reviews", summary.get("overdue", 0)],
        ["Reviewed in cycle", summary.get("reviewed_in_cycle", 0)],
        *([f"Open at level {level}", n] for level, n in _by_level(content)),
        *([label, n] for label, n in incident_figures(content)),
    ]
    story.append(_grid_table(figures, [60 * mm, 25 * mm], header=False))
    for view in heatmap.VIEWS:
        note = "" if view == "inherent" else " (risks without a residual rating are not counted)"
        story.append(KeepTogether([_p(f"Heat map: {view}{note}", h2), _heat_table(content, view)]))

    story.append(_p("Top 10 open risks by score", h2))
    top: list[list[Any]] = [["Ref", "Title", "Owner", "Level", "Score", "Residual", "Overdue"]]
    for risk in open_by_score(content)[:10]:
        residual = risk.get("residual") or {}
        top.append([
            risk.get("reference"), _p(risk.get("title"), small), _p(risk.get("owner"), small), risk.get("level"),
            risk.get("score"), residual.get("level") or "-", "yes" if risk.get("overdue") else "",
        ])  # fmt: skip
    story.append(_grid_table(top, [16 * mm, 56 * mm, 36 * mm, 18 * mm, 12 * mm, 18 * mm, 14 * mm]))

    story.append(_p("Movements" + (f" since {moves['from']}" if moves.get("from") else ""), h2))
    counts: list[list[Any]] = [["Movement", "Count"]]
    counts += [[kind.replace("_", " "), len(moves.get(kind) or [])] for kind in MOVEMENT_KINDS]
    story.append(_grid_table(counts, [70 * mm, 20 * mm]))
    details: list[list[Any]] = [["Movement", "Risk", "From", "To", "Note"]]
    shown: Counter[str] = Counter()
    for kind, risk_ref, before, after, note in movement_rows(moves):
        shown[kind] += 1
        if shown[kind] > PDF_MOVEMENTS_PER_KIND:  # a meeting reads the first ones; the XLSX lists them all
            continue
        details.append([
            kind.replace("_", " "), _p(risk_ref, small), "" if before is None else str(before),
            "" if after is None else str(after), _p(note, small),
        ])  # fmt: skip
    for kind, n in shown.items():
        if n > PDF_MOVEMENTS_PER_KIND:
            details.append([kind.replace("_", " "), f"and {n - PDF_MOVEMENTS_PER_KIND} more", "", "", "see the XLSX"])
    if len(details) > 1:
        story += [Spacer(1, 3 * mm), _grid_table(details, [42 * mm, 34 * mm, 20 * mm, 20 * mm, 54 * mm])]

    story.append(_p("Incidents and exercises", h2))
    incidents = content.get("incidents") or []
    if incidents:
        rows: list[list[Any]] = [["Ref", "Title", "Severity", "Exercise", "Declared", "Resolved", "RTO met", "Risks"]]
        for incident in incidents:
            rows.append([
                incident.get("reference"), _p(incident.get("title"), small), incident.get("severity"),
                yes_no(incident.get("exercise")), (incident.get("declared_at") or "")[:10],
                (incident.get("resolved_at") or "")[:10], yes_no(incident.get("rto_met")) or "-",
                _p(", ".join(incident.get("risks") or []), small),
            ])  # fmt: skip
        story.append(_grid_table(rows, [20 * mm, 38 * mm, 16 * mm, 16 * mm, 20 * mm, 20 * mm, 14 * mm, 26 * mm]))
    else:
        story.append(_p("None in the period.", body))

    def footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(20 * mm, 10 * mm, f"Snapshot SHA-256 {content_hash}")
        canvas.drawRightString(A4[0] - 20 * mm, 10 * mm, f"{_title(content)} - page {doc.page}")
        canvas.restoreState()

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm, bottomMargin=20 * mm,
        title=_title(content), subject=f"SHA-256 {content_hash}", author="riskops", invariant=1,
    )  # fmt: skip
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
