"""The first sheet of an XLSX workbook, read as a stream a row at a time, within bounds set before it is unpacked.

An XLSX file is a zip: its directory is checked against the limits (parts, what they unpack to, the ratio of a
zip bomb) before anything is unpacked. Parts are then read by expat, which builds no tree, so memory follows the
rows kept, not the markup around them; cell values come out as openpyxl reads them.
"""

import io
import struct
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Any
from xml.parsers import expat

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel, from_ISO8601

from riskops.config import Settings
from riskops.errors import PayloadTooLarge

# openpyxl's stubs leave it untyped: it gives a datetime, date, time or timedelta.
_from_iso8601: Callable[[str], Any] = from_ISO8601

_CHUNK = 64 * 1024
# Compressed parts are refused beyond this ratio (a zip bomb reaches about 1000:1); parts under the grace size,
# whose ratio says little, are not judged by it. Excel's own limits bound rows, columns and text.
_MAX_RATIO, _RATIO_GRACE = 100, 1024 * 1024
_MAX_PARTS = 1000
_MAX_SHEET_ROW, _MAX_SHEET_COLUMN, _MAX_TEXT = 1_048_576, 16_384, 32_767
_MAX_STYLES = 65_536
_NUMBER, _DATE, _DATETIME, _TIMEDELTA = 0, 1, 2, 3


class Unreadable(Exception):
    """The workbook's structure is damaged or beyond what Excel writes."""


class NoSuchSheet(Exception):
    def __init__(self, sheet: str, sheets: list[str]):
        super().__init__(sheet)
        self.sheet, self.sheets = sheet, sheets


def rows(
    stream: IO[bytes], settings: Settings, columns: int, sheet: str | None = None
) -> Iterator[tuple[int, list[Any]]]:
    """(row number, values from column A) of the sheet named `sheet` (default the first), row 1 first when it has
    any cell. A register has at most `columns` columns: with the row limit, that bounds the shared strings kept.

    Unreadable for a workbook that cannot be read; NoSuchSheet for a name it lacks; PayloadTooLarge beyond the
    unpacked size limits."""
    try:
        book = _open_workbook(stream, settings, columns, sheet)
        yield from book.rows()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, expat.ExpatError, KeyError, ValueError) as exc:
        raise Unreadable(str(exc)) from exc
    except (RuntimeError, NotImplementedError, EOFError, OSError) as exc:  # encrypted, odd methods, truncated
        raise Unreadable(str(exc)) from exc


def _check_part_count(stream: IO[bytes]) -> None:
    """The number of parts, from the zip's end record: zipfile holds an object per part it lists."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(max(0, size - 22 - 65535))  # the end record, 22 bytes, and a comment of up to 64 KiB
    tail = stream.read()
    stream.seek(0)
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        raise Unreadable("it is not a zip file")
    (parts,) = struct.unpack("<H", tail[end + 10 : end + 12])
    if parts > _MAX_PARTS:
        raise Unreadable(f"it has {parts} parts; a workbook to import may have at most {_MAX_PARTS}")


def _check_parts(archive: zipfile.ZipFile, settings: Settings) -> None:
    """The zip directory against the limits, before anything is unpacked: what all parts and each unpack to.

    zipfile stops a part at the size its directory entry gives (and then fails its checksum), so these hold."""
    parts, limit = archive.infolist(), settings.import_max_uncompressed_bytes
    total = sum(part.file_size for part in parts)
    if total > limit:
        raise PayloadTooLarge(
            f"The workbook unpacks to {total} bytes, more than the {limit} an import accepts "
            "(RISKOPS_IMPORT_MAX_UNCOMPRESSED_BYTES); split it into smaller files.",
            max_uncompressed_bytes=limit,
        )
    for part in parts:
        if part.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise Unreadable(f"part {part.filename} is compressed in a way XLSX does not use")
        if part.file_size > _RATIO_GRACE and part.file_size > _MAX_RATIO * max(part.compress_size, 1):
            raise PayloadTooLarge(
                f"The workbook part {part.filename} unpacks from {part.compress_size} to {part.file_size} bytes, "
                f"a ratio beyond the {_MAX_RATIO}:1 an import accepts; it looks like a zip bomb.",
                max_ratio=_MAX_RATIO,
            )


def _open_workbook(stream: IO[bytes], settings: Settings, columns: int, name: str | None) -> "_Workbook":
    _check_part_count(stream)
    archive = zipfile.ZipFile(stream)
    _check_parts(archive, settings)
    book_path = _relationship(archive, "_rels/.rels", "/officeDocument")
    if book_path is None:
        raise Unreadable("it names no workbook part")
    sheets, date1904 = _sheets(archive, book_path)
    if name is not None and name not in sheets:
        raise NoSuchSheet(name, list(sheets))
    chosen = sheets[name] if name is not None else next(iter(sheets.values()), None)
    rels = _rels_path(book_path)
    sheet = _relationship(archive, rels, None, chosen, base=book_path) if chosen else None
    if sheet is None:
        raise Unreadable(f"sheet '{name}' has no part" if name is not None else "it has no worksheet")
    strings = _relationship(archive, rels, "/sharedStrings", base=book_path)
    styles = _relationship(archive, rels, "/styles", base=book_path)
    max_strings = (settings.import_max_rows + 1) * columns
    return _Workbook(
        archive,
        sheet,
        _shared_strings(archive, strings, max_strings) if strings else [],
        _cell_kinds(archive, styles) if styles else bytearray(),
        CALENDAR_MAC_1904 if date1904 else CALENDAR_WINDOWS_1900,
    )


def _parse(archive: zipfile.ZipFile, path: str, start: Callable[..., None], end: Callable[[str], None] | None = None,
           text: Callable[[str], None] | None = None) -> Iterator[None]:  # fmt: skip
    """Feed a part to expat a chunk at a time, yielding after each; element names without their namespace."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True

    def no_doctype(*_: Any) -> None:  # no document type, hence no entities to expand
        raise Unreadable(f"{path} declares a document type")

    parser.StartDoctypeDeclHandler = no_doctype
    parser.StartElementHandler = lambda name, attrs: start(name.rpartition(" ")[2], attrs)
    if end is not None:
        parser.EndElementHandler = lambda name: end(name.rpartition(" ")[2])
    if text is not None:
        parser.CharacterDataHandler = text
    with archive.open(path) as source:
        while chunk := source.read(_CHUNK):
            parser.Parse(chunk, False)
            yield
    parser.Parse(b"", True)


def _run(parts: Iterator[None]) -> None:
    for _ in parts:
        pass


def _part_path(base: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    folder = base.rpartition("/")[0]
    parts: list[str] = folder.split("/") if folder else []
    for piece in target.split("/"):
        if piece == "..":
            parts = parts[:-1]
        elif piece not in ("", "."):
            parts.append(piece)
    return "/".join(parts)


def _rels_path(part: str) -> str:
    folder, _, name = part.rpartition("/")
    return f"{folder}/_rels/{name}.rels" if folder else f"_rels/{name}.rels"


def _relationship(
    archive: zipfile.ZipFile, rels: str, type_suffix: str | None, rel_id: str | None = None, base: str = ""
) -> str | None:
    """The first target in `rels` of this type (or with this id), as a path in the archive; None if there is none."""
    found: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if name != "Relationship" or found or attrs.get("TargetMode") == "External":
            return
        if (rel_id is not None and attrs.get("Id") == rel_id) or (
            type_suffix is not None and attrs.get("Type", "").endswith(type_suffix)
        ):
            found.append(_part_path(base, attrs.get("Target", "")))

    if rels not in archive.NameToInfo:
        return None
    _run(_parse(archive, rels, start))
    return found[0] if found else None


def _sheets(archive: zipfile.ZipFile, path: str) -> tuple[dict[str, str], bool]:
    """Each sheet's name -> its relationship id, in the workbook's order; whether its dates count from 1904."""
    sheets: dict[str, str] = {}
    date1904 = [False]

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == "sheet":  # r:id, in the transitional or the strict namespace
            sheets.setdefault(attrs.get("name", ""), next((v for k, v in attrs.items() if k.endswith(" id")), ""))
        elif name == "workbookPr":
            date1904[0] = attrs.get("date1904", "0").lower() in ("1", "true")

    _run(_parse(archive, path, start))
    return sheets, date1904[0]


def _shared_strings(archive: zipfile.ZipFile, path: str, limit: int) -> list[str]:
    """Each <si>'s text (its runs joined, phonetic hints left out), as openpyxl reads it."""
    strings: list[str] = []
    pieces: list[str] = []
    state = {"in_t": False, "phonetic": 0, "length": 0}

    def start(name: str, _: dict[str, str]) -> None:
        if name == "si":
            pieces.clear()
            state["length"] = 0
        elif name == "rPh":
            state["phonetic"] += 1
        elif name == "t" and not state["phonetic"]:
            state["in_t"] = True

    def end(name: str) -> None:
        if name == "si":
            if len(strings) >= limit:
                raise Unreadable(f"its shared strings exceed the {limit} the row limit could use")
            strings.append("".join(pieces).replace("x005F_", ""))
        elif name == "rPh":
            state["phonetic"] -= 1
        elif name == "t":
            state["in_t"] = False

    def text(data: str) -> None:
        if state["in_t"]:
            state["length"] += len(data)
            if state["length"] > _MAX_TEXT:
                raise Unreadable(f"shared string {len(strings)} is longer than Excel's {_MAX_TEXT} characters")
            pieces.append(data)

    _run(_parse(archive, path, start, end, text))
    return strings


def _format_kind(code: str | None) -> int:
    if is_timedelta_format(code):
        return _TIMEDELTA
    if is_date_format(code):
        return _DATETIME if any(c in (code or "").lower() for c in "hs") else _DATE
    return _NUMBER


def _cell_kinds(archive: zipfile.ZipFile, path: str) -> bytearray:
    """For each cell style (<cellXfs>), whether its number format shows a date, a date and time, or a duration."""
    custom: dict[int, int] = {}
    kinds = bytearray()
    where = {"numFmts": False, "cellXfs": False}

    def start(name: str, attrs: dict[str, str]) -> None:
        if name in where:
            where[name] = True
        elif name == "numFmt" and where["numFmts"]:
            if len(custom) >= _MAX_STYLES:
                raise Unreadable(f"it has more than {_MAX_STYLES} number formats")
            custom[int(attrs.get("numFmtId", "0"))] = _format_kind(attrs.get("formatCode"))
        elif name == "xf" and where["cellXfs"]:
            if len(kinds) >= _MAX_STYLES:
                raise Unreadable(f"it has more than {_MAX_STYLES} cell styles")
            number_format = int(attrs.get("numFmtId", "0"))
            kind = custom.get(number_format)
            kinds.append(_format_kind(BUILTIN_FORMATS.get(number_format)) if kind is None else kind)

    def end(name: str) -> None:
        if name in where:
            where[name] = False

    _run(_parse(archive, path, start, end))
    return kinds


_COLUMN_NUMBERS: dict[str, int] = {}


def _column_number(letters: str) -> int:
    number = _COLUMN_NUMBERS.get(letters)
    if number is None:
        number = 0
        for letter in letters:
            if not "A" <= letter <= "Z":
                raise Unreadable(f"'{letters}' is not a column")
            number = number * 26 + ord(letter) - 64
        if not 1 <= number <= _MAX_SHEET_COLUMN or len(letters) > 3:
            raise Unreadable(f"column {letters} is beyond Excel's last column, XFD")
        _COLUMN_NUMBERS[letters] = number
    return number


class _Workbook:
    """The first sheet, a row at a time; a row is a list of cell values from column A (None where blank)."""

    def __init__(self, archive: zipfile.ZipFile, sheet: str, strings: list[str], kinds: bytearray, epoch: datetime):
        self.archive, self.sheet, self.strings, self.kinds, self.epoch = archive, sheet, strings, kinds, epoch
        self.width = _MAX_SHEET_COLUMN  # cells right of the header row's last are not read
        self.pending: list[tuple[int, list[Any]]] = []
        self.row_no = 0
        self.cells: dict[int, Any] | None = None
        self.column = 0
        self.cell: tuple[str | None, str, str | None] | None = None  # (reference, type, style) of the open cell
        self.text: list[str] = []
        self.length = 0
        self.collecting = False
        self.inline = False
        self.phonetic = 0

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        for _ in _parse(self.archive, self.sheet, self._start, self._end, self._text):
            pending, self.pending = self.pending, []
            yield from pending
        yield from self.pending

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "c" and self.cells is not None:
            ref = attrs.get("r")
            self.cell = (ref, attrs.get("t", "n"), attrs.get("s"))
            self.text, self.length, self.inline = [], 0, False
        elif self.cell is None:
            if name == "row":
                number = attrs.get("r")
                self.row_no = int(number) if number else self.row_no + 1
                if not 1 <= self.row_no <= _MAX_SHEET_ROW:
                    raise Unreadable(f"row {self.row_no} is beyond Excel's last row, {_MAX_SHEET_ROW}")
                self.cells, self.column = {}, 0
        elif name == "v":
            self.collecting = True
        elif name == "is":
            self.inline = True
        elif name == "rPh":
            self.phonetic += 1
        elif name == "t" and self.inline and not self.phonetic:
            self.collecting = True

    def _end(self, name: str) -> None:
        if name == "c" and self.cell is not None and self.cells is not None:
            ref, kind, style = self.cell
            self.cell, self.collecting = None, False
            self.column = _column_number(ref.rstrip("0123456789")) if ref else self.column + 1
            if self.column <= self.width:
                value = self._value(kind, style, "".join(self.text), ref)
                if value is not None:
                    self.cells[self.column] = value
        elif name in ("v", "t"):
            self.collecting = False
        elif name == "rPh":
            self.phonetic -= 1
        elif name == "row" and self.cells is not None:
            cells, self.cells = self.cells, None
            width = max(cells, default=0)
            if not self.pending and self.width == _MAX_SHEET_COLUMN:  # the first row: the header, if it is row 1
                self.width = width if self.row_no == 1 else 0
            self.pending.append((self.row_no, [cells.get(c) for c in range(1, width + 1)]))

    def _text(self, data: str) -> None:
        if self.collecting:
            self.length += len(data)
            if self.length > _MAX_TEXT:
                raise Unreadable(f"a cell of row {self.row_no} holds more than Excel's {_MAX_TEXT} characters")
            self.text.append(data)

    def _value(self, kind: str, style: str | None, text: str, ref: str | None) -> Any:
        """A cell's value as openpyxl reads it with data_only (a formula's last result); dates per its format."""
        if kind == "inlineStr":
            return text
        if not text:
            return None
        if kind == "s":
            index = int(text)
            if not 0 <= index < len(self.strings):
                raise Unreadable(f"cell {ref} names shared string {index}, which does not exist")
            return self.strings[index]
        if kind in ("str", "e"):
            return text
        if kind == "b":
            return text.strip() in ("1", "true")
        if kind == "d":
            value: Any = _from_iso8601(text)
            return self._as_date(value, style)
        number: Any = float(text) if any(c in text for c in ".eE") else int(text)
        cell_kind = self._kind(style)
        if cell_kind == _NUMBER:
            return number
        try:
            value = from_excel(number, self.epoch, timedelta=cell_kind == _TIMEDELTA)
        except (OverflowError, ValueError):
            return "#VALUE!"  # as openpyxl: a serial no date can have
        return value.date() if cell_kind == _DATE and isinstance(value, datetime) else value

    def _kind(self, style: str | None) -> int:
        index = int(style) if style else 0
        return self.kinds[index] if 0 <= index < len(self.kinds) else _NUMBER

    def _as_date(self, value: Any, style: str | None) -> Any:
        return value.date() if isinstance(value, datetime) and self._kind(style) == _DATE else value
