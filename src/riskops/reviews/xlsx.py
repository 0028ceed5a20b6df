"""A review snapshot as an XLSX workbook: the register, its movements, both heat maps, the period's incidents and
the methodology (matrix, levels, scales, hash), typed cells throughout and never a formula."""

import io
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from riskops.reviews import heatmap
from riskops.reviews.exports import CSV_COLUMNS, incident_figures, movement_rows, register_row, yes_no
from riskops.reviews.models import Content

DATE_COLUMNS = frozenset(
    {"acceptance_expires_at", "last_reviewed_at", "next_review_at", "closed_at", "materialised_at"}
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


def render(content: Content, content_hash: str, moves: dict[str, Any]) -> bytes:
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
