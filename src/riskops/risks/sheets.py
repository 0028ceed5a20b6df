"""Worksheets written a row at a time with typed, safe cells: the one XLSX writer of every export.

XlsxWriter in constant_memory mode sends each row to a temporary file, so memory stays flat however long the sheet
is, and every cell is written by its type's own method (text by `write_string`, which never makes a formula), never
by `write()`, which guesses.
"""

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

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


def _black(fill: str) -> str:
    return "#000000"


class Formats:
    """The workbook's cell formats, each made once (XlsxWriter keeps one per distinct style); text on a fill is
    in the colour `text_color` gives for it."""

    def __init__(self, workbook: Any, text_color: Callable[[str], str] = _black) -> None:
        self.workbook, self.text_color = workbook, text_color
        self.made: dict[tuple[bool, str | None, bool], Any] = {}

    def get(self, *, bold: bool, fill: str | None, date: bool) -> Any:
        key = (bold, fill, date)
        if key not in self.made:
            properties: dict[str, Any] = {"bold": True} if bold else {}
            if fill:
                properties |= {"pattern": 1, "bg_color": fill, "font_color": self.text_color(fill)}
            if date:
                properties["num_format"] = DATE_FORMAT
            self.made[key] = self.workbook.add_format(properties) if properties else None
        return self.made[key]


Write = Callable[[int, int, Any], object]
_KINDS = (bool, int, float, str, datetime, list, type(None))  # bool first: a bool is an int


class Sheet:
    """A worksheet written a row at a time, with typed, safe cells."""

    def __init__(self, workbook: Any, formats: Formats, title: str) -> None:
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
