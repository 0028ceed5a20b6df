"""A review snapshot as an XLSX workbook: the register, its movements, both heat maps, the period's incidents and
the methodology (matrix, levels, scales, hash), typed cells throughout and never a formula.

Written by XlsxWriter in constant_memory mode: each sheet goes a row at a time to a temporary file, so memory stays
flat however long the register is, and every cell is written by its type's own method (text by `write_string`,
which never makes a formula), never by `write()`, which guesses.
"""

import io
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

import xlsxwriter  # type: ignore[import-untyped]  # ships no type hints and PyPI has no stubs for it

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
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"

# Control characters XML 1.0 cannot carry (tab and line feed stay); a carriage return becomes a line feed, as an
# XML parser would read it.
_ILLEGAL_CHARACTERS = re.compile(r"[\000-\010\013\014\016-\037]")
_CARRIAGE_RETURN = re.compile(r"\r\n?")
_UNCLEAN = re.compile(r"[\000-\010\013\014\016-\037\r]")
_PIXELS_PER_WIDTH = 7  # XlsxWriter stores a width as pixels / 7 (Calibri 11's digit), openpyxl stored it as given


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


def _nothing(row: int, col: int, value: None) -> None:
    pass


def _text(value: str) -> str:
    if _UNCLEAN.search(value) is None:  # nearly always: one scan, no copy
        return value
    return _CARRIAGE_RETURN.sub("\n", _ILLEGAL_CHARACTERS.sub("", value))


class Styled(NamedTuple):
    """A cell value with its own style, in a row of plain values."""

    value: Any
    bold: bool = False
    fill: str | None = None


class _Formats:
    """The workbook's cell formats, each made once (XlsxWriter keeps one per distinct style)."""

    def __init__(self, workbook: Any) -> None:
        self.workbook = workbook
        self.made: dict[tuple[bool, str | None, bool], Any] = {}

    def get(self, *, bold: bool, fill: str | None, date: bool) -> Any:
        key = (bold, fill, date)
        if key not in self.made:
            properties: dict[str, Any] = {"bold": True} if bold else {}
            if fill:
                properties |= {"pattern": 1, "bg_color": fill, "font_color": heatmap.text_color(fill)}
            if date:
                properties["num_format"] = DATE_FORMAT
            self.made[key] = self.workbook.add_format(properties) if properties else None
        return self.made[key]


Write = Callable[[int, int, Any], object]
_KINDS = (bool, int, float, str, datetime, list, type(None))  # bool first: a bool is an int


class _Sheet:
    """A worksheet written a row at a time, with typed, safe cells."""

    def __init__(self, workbook: Any, formats: _Formats, title: str) -> None:
        self.ws = workbook.add_worksheet(title)
        self.formats = formats
        self.styles: dict[tuple[bool, str | None], dict[type, Write]] = {}
        self.rows = 0
        self.width = 0

    def append(self, values: Iterable[Any], *, bold: bool = False) -> None:
        row, col = self.rows, -1
        writers = self._writers(bold, None)
        for col, value in enumerate(values):
            if type(value) is Styled:
                self._writer(self._writers(value.bold, value.fill), value.value)(row, col, value.value)
            else:
                self._writer(writers, value)(row, col, value)
        self.rows += 1
        self.width = max(self.width, col + 1)

    @staticmethod
    def _writer(writers: dict[type, Write], value: Any) -> Write:
        write = writers.get(type(value))
        if write is None:  # a subclass (an enum, say) is written as what it is a kind of
            kind = next((kind for kind in _KINDS if isinstance(value, kind)), None)
            if kind is None:
                raise TypeError(f"no XLSX cell for a {type(value).__name__}")
            write = writers[kind]
        return write

    def _writers(self, bold: bool, fill: str | None) -> dict[type, Write]:
        """Each kind of value's own write method in one style: text by write_string, so never a formula."""
        if (bold, fill) not in self.styles:
            ws, cell = self.ws, self.formats.get(bold=bold, fill=fill, date=False)

            def text(row: int, col: int, value: str) -> None:
                self._write_text(row, col, value, cell)

            def joined(row: int, col: int, value: list[Any]) -> None:
                self._write_text(row, col, ";".join(str(v) for v in value), cell)

            self.styles[bold, fill] = {
                str: text,
                list: joined,
                bool: partial(ws.write_boolean, cell_format=cell),
                int: partial(ws.write_number, cell_format=cell),
                float: partial(ws.write_number, cell_format=cell),
                datetime: partial(ws.write_datetime, cell_format=self.formats.get(bold=bold, fill=fill, date=True)),
                # A blank cell without a style is no cell at all.
                type(None): partial(ws.write_blank, cell_format=cell) if cell else _nothing,
            }
        return self.styles[bold, fill]

    def _write_text(self, row: int, col: int, value: str, cell_format: Any) -> None:
        text = _text(value)
        if not text:  # empty text is no text, as openpyxl wrote it
            if cell_format:
                self.ws.write_blank(row, col, None, cell_format)
        elif text.startswith("<r>") and text.endswith("</r>"):
            # constant_memory copies such a string into the sheet's XML unescaped, as if it were a rich string's
            # markup; written as a rich string of plain runs, it is escaped and reads back as the same text.
            runs = (text[:1], text[1:3], text[3:])
            self.ws.write_rich_string(row, col, *runs, *([cell_format] if cell_format else []))
        else:
            self.ws.write_string(row, col, text, cell_format)

    def widths(self, *widths: float) -> None:
        for col, width in enumerate(widths):
            self.ws.set_column_pixels(col, col, width * _PIXELS_PER_WIDTH)

    def table(self, header: Iterable[str]) -> None:
        """Bold header row, frozen; call `filter()` after the data rows."""
        self.ws.freeze_panes(1, 0)
        self.append(header, bold=True)

    def filter(self) -> None:
        self.ws.autofilter(0, 0, max(self.rows, 1) - 1, max(self.width, 1) - 1)


def _heat_sheet(workbook: Any, formats: _Formats, content: Content, view: heatmap.View) -> None:
    matrix = content.get("matrix") or {}
    sheet = _Sheet(workbook, formats, f"Heat map {view}")
    sheet.widths(24, *(16 for _ in matrix.get("impact", [])))
    counts = heatmap.grid(content, view)
    sheet.append(["Likelihood \\ Impact", *(f"{p['value']} {p['name']}" for p in matrix.get("impact", []))], bold=True)
    for point in reversed(matrix.get("likelihood", [])):
        value = point["value"]
        cells = [
            Styled(counts[value - 1][i - 1], fill=heatmap.cell_color(content, value, i))
            for i in (p["value"] for p in matrix.get("impact", []))
        ]
        sheet.append([Styled(f"{value} {point['name']}", bold=True), *cells])
    sheet.append([])
    sheet.append([f"Open risks by {view} rating; risks without a {view} rating are not counted."])


def render(content: Content, content_hash: str, moves: dict[str, Any]) -> bytes:
    """A workbook: Register, Movements, Heat map inherent/residual, Incidents and Methodology sheets."""
    out = io.BytesIO()
    with xlsxwriter.Workbook(out, {"constant_memory": True}) as workbook:
        formats = _Formats(workbook)

        register = _Sheet(workbook, formats, "Register")
        register.widths(10, 40, 16, 24, 8, 10, *(10 for _ in range(len(CSV_COLUMNS) - 6)))
        register.table(CSV_COLUMNS)
        for risk in content.get("risks", []):
            register.append(_xlsx_value(k, v) for k, v in register_row(risk).items())
        register.filter()

        movements = _Sheet(workbook, formats, "Movements")
        movements.widths(34, 20, 12, 12, 50)
        movements.table(("kind", "risk", "from", "to", "note"))
        for row in movement_rows(moves):
            movements.append(row)
        movements.filter()

        for view in heatmap.VIEWS:
            _heat_sheet(workbook, formats, content, view)

        incidents = _Sheet(workbook, formats, "Incidents")
        incidents.widths(14, 40, 10, 10, 20, 20, 20, 10, 10, 14, 30)
        incidents.table(INCIDENT_COLUMNS)
        for incident in content.get("incidents", []):
            incidents.append(_incident_cell(incident, k) for k in INCIDENT_COLUMNS)
        incidents.filter()
        figures = incident_figures(content)
        if figures:  # below the filtered table, so that filtering never hides it
            incidents.append([])
            for label, n in figures:
                incidents.append([Styled(label, bold=True), n])

        _methodology_sheet(workbook, formats, content, content_hash, moves)
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


def _methodology_sheet(
    workbook: Any, formats: _Formats, content: Content, content_hash: str, moves: dict[str, Any]
) -> None:
    matrix = content.get("matrix") or {}
    sheet = _Sheet(workbook, formats, "Methodology")
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
        sheet.append([Styled(label, bold=True), value])
    sheet.append([])
    sheet.append(("Level", "Review interval (days)", "Colour"), bold=True)
    for level in matrix.get("levels", []):
        color = level.get("color") or heatmap.FALLBACK_COLOR
        sheet.append([level["name"], level.get("review_interval_days"), Styled(color, fill=color)])
    for axis in ("likelihood", "impact"):
        sheet.append([])
        sheet.append((axis.capitalize(), "Description", "Value"), bold=True)
        for point in matrix.get(axis, []):
            sheet.append([point.get("name"), point.get("description") or "", point.get("value")])
