"""Exports of a review snapshot's content: CSV, canonical JSON, an XLSX workbook and a PDF board report.

Every export is a pure function of the snapshot content (and its hash and movements), so a frozen
snapshot exports the same way whenever it is asked for.
"""

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from riskops.reviews import heatmap

Content = dict[str, Any]

CSV_COLUMNS: tuple[str, ...] = (
    "reference",
    "title",
    "category",
    "owner",
    "status",
    "treatment",
    "inherent_likelihood",
    "inherent_impact",
    "inherent_score",
    "inherent_level",
    "residual_likelihood",
    "residual_impact",
    "residual_score",
    "residual_level",
    "score",
    "level",
    "acceptance_approver",
    "acceptance_expires_at",
    "acceptance_expired",
    "controls",
    "controls_implemented",
    "last_reviewed_at",
    "next_review_at",
    "overdue",
    "review_in_cycle",
    "tags",
    "closed_at",
    "materialised_at",
)
"""The register's columns, in order; a stable contract for CSV and the XLSX "Register" sheet.

reference, title, category, owner, status, treatment; inherent_likelihood, inherent_impact, inherent_score,
inherent_level; residual_likelihood, residual_impact, residual_score, residual_level (empty without a residual
rating); score, level (the current rating); acceptance_approver, acceptance_expires_at, acceptance_expired
(empty without an acceptance); controls (how many), controls_implemented (how many are implemented);
last_reviewed_at, next_review_at, overdue; review_in_cycle (the cycle's review outcome, if any);
tags (joined by ";"); closed_at, materialised_at. Timestamps are ISO 8601, booleans true/false.
"""

DATE_COLUMNS = frozenset(
    {"acceptance_expires_at", "last_reviewed_at", "next_review_at", "closed_at", "materialised_at"}
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
MOVEMENT_KINDS = (
    "added",
    "closed",
    "reopened",
    "level_up",
    "level_down",
    "score_changed",
    "treatment_changed",
    "overdue_reviews",
    "acceptances_expired",
    "acceptances_expiring_next_quarter",
    "materialised",
    "incidents_without_risks",
    "exercises",
)
INCIDENT_COLUMNS = (
    "reference",
    "title",
    "severity",
    "exercise",
    "playbook",
    "declared_at",
    "resolved_at",
    "rto_met",
    "breached",
    "objectives_met",
    "risks",
)
INCIDENT_FLAGS = frozenset({"exercise", "rto_met", "breached", "objectives_met"})


def yes_no(value: bool | None) -> str | None:
    """A flag as a reader says it; None while undecided (or in a snapshot older than the flag)."""
    return None if value is None else "yes" if value else "no"


def incident_figures(content: Content) -> list[tuple[str, int]]:
    """The summary's incident counts, for snapshots that have them (older ones predate the honest RTO rule)."""
    summary = content.get("summary") or {}
    labels = (("incidents", "Incidents in period (not exercises)"), ("rto_missed", "RTO missed"))
    return [(label, summary[key]) for key, label in labels if key in summary]


# ---- rows ----


def register_row(risk: dict[str, Any]) -> dict[str, Any]:
    """One risk as CSV_COLUMNS -> raw value (str, int, bool or None; timestamps stay ISO strings)."""
    inherent = risk.get("inherent") or {}
    residual = risk.get("residual") or {}
    acceptance = risk.get("acceptance") or {}
    controls = risk.get("controls") or []
    row = {
        "reference": risk.get("reference"),
        "title": risk.get("title"),
        "category": risk.get("category"),
        "owner": risk.get("owner"),
        "status": risk.get("status"),
        "treatment": risk.get("treatment"),
        **{f"inherent_{k}": inherent.get(k) for k in ("likelihood", "impact", "score", "level")},
        **{f"residual_{k}": residual.get(k) for k in ("likelihood", "impact", "score", "level")},
        "score": risk.get("score"),
        "level": risk.get("level"),
        "acceptance_approver": acceptance.get("approver"),
        "acceptance_expires_at": acceptance.get("expires_at"),
        "acceptance_expired": acceptance.get("expired"),
        "controls": len(controls),
        "controls_implemented": sum(c.get("status") == "implemented" for c in controls),
        "last_reviewed_at": risk.get("last_reviewed_at"),
        "next_review_at": risk.get("next_review_at"),
        "overdue": risk.get("overdue"),
        "review_in_cycle": risk.get("review_in_cycle"),
        "tags": ";".join(risk.get("tags") or []),
        "closed_at": risk.get("closed_at"),
        "materialised_at": risk.get("materialised_at"),
    }
    return {column: row[column] for column in CSV_COLUMNS}


def movement_rows(moves: dict[str, Any]) -> Iterator[tuple[str, str, Any, Any, str]]:
    """(kind, risk, from, to, note) per movement; an incident's risk is its linked risks joined by ";"."""
    for kind in MOVEMENT_KINDS:
        for item in moves.get(kind) or []:
            if isinstance(item, str):
                yield kind, item, None, None, ""
            elif "reference" in item:  # an incident
                yield kind, ";".join(item.get("risks") or []), None, None, f"{item['reference']}: {item.get('title')}"
            else:
                yield kind, str(item.get("risk")), item.get("from"), item.get("to"), ""


def open_by_score(content: Content) -> list[dict[str, Any]]:
    """Open risks, highest score first (then reference)."""
    open_risks = [r for r in content.get("risks", []) if r.get("status") == "open"]
    return sorted(open_risks, key=lambda r: (-(r.get("score") or 0), r.get("reference") or ""))


# ---- CSV ----


def neutralise(text: str) -> str:
    """Defuse spreadsheet formula injection: text a spreadsheet would evaluate gets a leading apostrophe."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    return neutralise(str(value))


def csv_lines(content: Content) -> Iterator[str]:
    """RFC 4180 CSV (CRLF line ends), a header of CSV_COLUMNS then one line per risk; stream it as is."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values: Iterable[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(CSV_COLUMNS)
    for risk in content.get("risks", []):
        yield line(_csv_value(v) for v in register_row(risk).values())


# ---- JSON ----


def to_json(content: Content, content_hash: str) -> bytes:
    """The snapshot with its hash, canonical (sorted keys, compact, UTF-8)."""
    document = {"hash": content_hash, "snapshot": content}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# ---- XLSX ----


def excel_datetime(value: str) -> datetime:
    """An ISO timestamp as a naive UTC datetime (Excel has no time zones)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _xlsx_value(column: str, value: Any) -> Any:
    if isinstance(value, str) and column in DATE_COLUMNS:
        try:
            return excel_datetime(value)
        except ValueError:
            return value
    return value


def _argb(color: str) -> str:
    return "FF" + color.lstrip("#").upper()


class _Sheet:
    """A write-only worksheet with typed, safe cells."""

    def __init__(self, workbook: Workbook, title: str) -> None:
        sheet = workbook.create_sheet(title)
        assert isinstance(sheet, WriteOnlyWorksheet)
        self.ws = sheet
        self.rows = 0
        self.width = 0
        self.bold = Font(bold=True)

    def cell(self, value: Any, *, bold: bool = False, fill: str | None = None) -> Cell:
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)
        elif isinstance(value, list):
            value = ";".join(str(v) for v in value)
        cell = WriteOnlyCell(self.ws, value=value)
        if cell.data_type == "f":  # text, never a formula
            cell.data_type = "s"
        if isinstance(value, datetime):
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
        if bold:
            cell.font = self.bold
        if fill:
            cell.fill = PatternFill("solid", fgColor=_argb(fill))
            cell.font = Font(bold=bold, color=_argb(heatmap.text_color(fill)))
        return cell

    def append(self, values: Iterable[Any], *, bold: bool = False) -> None:
        cells = [v if isinstance(v, Cell) else self.cell(v, bold=bold) for v in values]
        self.ws.append(cells)
        self.rows += 1
        self.width = max(self.width, len(cells))

    def widths(self, *widths: float) -> None:
        for index, width in enumerate(widths, start=1):
            self.ws.column_dimensions[get_column_letter(index)].width = width  # type: ignore[attr-defined]  # stubs lag

    def table(self, header: Iterable[str]) -> None:
        """Bold header row, frozen; call `filter()` after the data rows."""
        self.ws.freeze_panes = "A2"
        self.append(header, bold=True)

    def filter(self) -> None:
        self.ws.auto_filter.ref = (  # type: ignore[attr-defined]  # stubs lag
            f"A1:{get_column_letter(max(self.width, 1))}{max(self.rows, 1)}"
        )


def _heat_sheet(workbook: Workbook, content: Content, view: heatmap.View) -> None:
    matrix = content.get("matrix") or {}
    sheet = _Sheet(workbook, f"Heat map {view}")
    sheet.widths(24, *(16 for _ in matrix.get("impact", [])))
    counts = heatmap.grid(content, view)
    sheet.append(["Likelihood \\ Impact", *(f"{p['value']} {p['name']}" for p in matrix.get("impact", []))], bold=True)
    for point in reversed(matrix.get("likelihood", [])):
        value = point["value"]
        cells = [
            sheet.cell(counts[value - 1][i - 1], fill=heatmap.cell_color(content, value, i))
            for i in (p["value"] for p in matrix.get("impact", []))
        ]
        sheet.append([sheet.cell(f"{value} {point['name']}", bold=True), *cells])
    sheet.append([])
    sheet.append([f"Open risks by {view} rating; risks without a {view} rating are not counted."])


def to_xlsx(content: Content, content_hash: str, moves: dict[str, Any]) -> bytes:
    """A workbook: Register, Movements, Heat map inherent/residual, Incidents and Methodology sheets."""
    workbook = Workbook(write_only=True)

    register = _Sheet(workbook, "Register")
    register.widths(10, 40, 16, 24, 8, 10, *(10 for _ in range(len(CSV_COLUMNS) - 6)))
    register.table(CSV_COLUMNS)
    for risk in content.get("risks", []):
        register.append(_xlsx_value(k, v) for k, v in register_row(risk).items())
    register.filter()

    movements = _Sheet(workbook, "Movements")
    movements.widths(34, 20, 12, 12, 50)
    movements.table(("kind", "risk", "from", "to", "note"))
    for row in movement_rows(moves):
        movements.append(row)
    movements.filter()

    for view in heatmap.VIEWS:
        _heat_sheet(workbook, content, view)

    incidents = _Sheet(workbook, "Incidents")
    incidents.widths(14, 40, 10, 10, 20, 20, 20, 10, 10, 14, 30)
    incidents.table(INCIDENT_COLUMNS)
    for incident in content.get("incidents", []):
        incidents.append(_incident_cell(incident, k) for k in INCIDENT_COLUMNS)
    incidents.filter()
    figures = incident_figures(content)
    if figures:  # below the filtered table, so that filtering never hides it
        incidents.append([])
        for label, n in figures:
            incidents.append([incidents.cell(label, bold=True), n])

    _methodology_sheet(workbook, content, content_hash, moves)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _incident_cell(incident: dict[str, Any], key: str) -> Any:
    if key in ("declared_at", "resolved_at"):
        return _date_or_none(incident, key)
    if key in INCIDENT_FLAGS:
        return yes_no(incident.get(key))
    return incident.get(key)


def _date_or_none(record: dict[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    return excel_datetime(value) if isinstance(value, str) else None


def _methodology_sheet(workbook: Workbook, content: Content, content_hash: str, moves: dict[str, Any]) -> None:
    matrix = content.get("matrix") or {}
    sheet = _Sheet(workbook, "Methodology")
    sheet.widths(28, 70, 12)
    facts: list[tuple[str, Any]] = [
        ("Snapshot SHA-256", content_hash),
        ("As of", _date_or_none(content, "as_of")),
        ("Cycle", content.get("cycle")),
        ("Period start", _date_or_none(content, "period_start")),
        ("Movements since", _date_or_none(moves, "from")),
        ("Matrix version", matrix.get("version")),
        ("Matrix name", matrix.get("name")),
        ("Risk appetite", matrix.get("appetite")),
        ("Score", "likelihood x impact; the level is the matrix cell's level"),
    ]
    for label, value in facts:
        sheet.append([sheet.cell(label, bold=True), value])
    sheet.append([])
    sheet.append(("Level", "Review interval (days)", "Colour"), bold=True)
    for level in matrix.get("levels", []):
        color = level.get("color") or heatmap.FALLBACK_COLOR
        sheet.append([level["name"], level.get("review_interval_days"), sheet.cell(color, fill=color)])
    for axis in ("likelihood", "impact"):
        sheet.append([])
        sheet.append((axis.capitalize(), "Description", "Value"), bold=True)
        for point in matrix.get(axis, []):
            sheet.append([point.get("name"), point.get("description") or "", point.get("value")])


# ---- PDF ----


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(_escape("" if text is None else str(text)), style)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _grid_table(rows: list[list[Any]], widths: list[float] | None = None, *, header: bool = True) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    style = [
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


PDF_MOVEMENTS_PER_KIND = 25


def to_pdf(content: Content, content_hash: str, moves: dict[str, Any]) -> bytes:
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
