"""Import a register from CSV or XLSX: every bad row reported by row and column; all rows or none.

The work is bounded before it starts: the upload's size, what an XLSX (a zip) unpacks to, and the number of rows
(RISKOPS_IMPORT_MAX_BYTES, _MAX_UNCOMPRESSED_BYTES, _MAX_ROWS). Both formats are read as streams, a row at a time:
XLSX parts by expat, which builds no tree, so memory follows the rows kept, not the markup around them. Every row is
checked and scored against the current matrix before the write transaction; that transaction only inserts.
"""

import csv
import io
import re
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import IO, Any
from xml.parsers import expat

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel, from_ISO8601
from pydantic import BaseModel, Field, ValidationError

from riskops.apikeys.service import Principal
from riskops.config import Settings
from riskops.db import Database
from riskops.errors import DomainError, PayloadTooLarge, Unprocessable, field_error
from riskops.risks import service
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import RiskCreate, date_only

# The documented column set, in order. Required columns first.
REQUIRED = ("title", "category", "owner", "inherent_likelihood", "inherent_impact")
OPTIONAL = (
    "description", "residual_likelihood", "residual_impact", "treatment", "tags",
    "acceptance_approver", "acceptance_expires_at", "next_review_at",
)  # fmt: skip
COLUMNS = REQUIRED + OPTIONAL
_NESTED = {("inherent", "likelihood"): "inherent_likelihood", ("inherent", "impact"): "inherent_impact",
           ("residual", "likelihood"): "residual_likelihood", ("residual", "impact"): "residual_impact",
           ("acceptance", "approver"): "acceptance_approver",
           ("acceptance", "expires_at"): "acceptance_expires_at"}  # fmt: skip

# The answer lists this many problems and counts them all.
MAX_ERRORS = 1000


class RowError(BaseModel):
    row: int
    column: str | None
    message: str


class ImportReport(BaseModel):
    dry_run: bool
    rows: int
    created: list[str]
    errors: list[RowError] = Field(description=f"The first {MAX_ERRORS} problems, in file order.")
    error_count: int = Field(description="Every problem found in the file, listed or not.")


@dataclass
class CheckedFile:
    """A file read and every row checked on one matrix version; nothing written. Rows are kept while all pass
    (and not at all for a dry run)."""

    matrix_version: int
    spec: MatrixSpec
    keep: bool = True
    rows: int = 0
    risks: list[service.NewRisk] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def problem(self, row: int, column: str | None, message: str) -> None:
        self.error_count += 1
        self.risks.clear()  # the file will not be imported: keep no rows
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(row=row, column=column, message=message))

    def refusal(self, detail: str) -> Unprocessable:
        listed = f" The first {MAX_ERRORS} are listed." if self.error_count > MAX_ERRORS else ""
        return Unprocessable(
            f"{detail}{listed}", errors=[e.model_dump() for e in self.errors], error_count=self.error_count
        )


def _unreadable(detail: str) -> Unprocessable:
    """The upload as a whole cannot be read as a register (type, encoding, damage): 422 naming the file."""
    return Unprocessable(detail, errors=[field_error(("body", "file"), "not a readable .csv or .xlsx register")])


def import_file(
    db: Database, filename: str, stream: IO[bytes], who: Principal, settings: Settings, *, dry_run: bool
) -> ImportReport:
    """Check the whole file with no transaction open, then insert every row in one write transaction, or none."""
    with db.read() as session:
        matrix = matrices.current(session)
    checked = check_file(filename, stream, matrix.version, matrix.parsed(), who, settings, keep=not dry_run)
    if dry_run:
        return ImportReport(
            dry_run=True, rows=checked.rows, created=[], errors=checked.errors, error_count=checked.error_count
        )
    if checked.error_count:
        raise checked.refusal(f"{checked.error_count} problem(s) in the file; nothing was imported.")
    with db.write() as session:
        created = service.create_checked(session, matrix.version, checked.spec, checked.risks, who, settings)
    return ImportReport(dry_run=False, rows=checked.rows, created=created, errors=[], error_count=0)


def check_file(
    filename: str, stream: IO[bytes], matrix_version: int, spec: MatrixSpec, who: Principal, settings: Settings,
    *, keep: bool = True,
) -> CheckedFile:  # fmt: skip
    """Read the file a row at a time and check each row as POST /risks would, on `spec`; stop at the row cap."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    if size > settings.import_max_bytes:
        raise PayloadTooLarge(
            f"The file is {size} bytes, more than the {settings.import_max_bytes} an import accepts "
            "(RISKOPS_IMPORT_MAX_BYTES).",
            max_bytes=settings.import_max_bytes,
        )
    checked = CheckedFile(matrix_version, spec, keep)
    table = _read_table(filename, stream, settings)
    first = next(table, None)
    if first is None:
        raise _unreadable(f"'{filename}' is empty; the first row must name the columns.")
    header = [str(h).strip().lower() if h is not None else "" for h in first[1]] if first[0] == 1 else []
    for name in header:
        if name and name not in COLUMNS:
            checked.problem(1, name, "unknown column")
    for name in REQUIRED:
        if name not in header:
            checked.problem(1, name, "required column missing")
    if checked.error_count:
        raise checked.refusal("The header row does not match the import columns.")
    for row_no, raw in table:  # (a first row other than 1 left the header empty: refused above)
        cells = {name: raw[i] for i, name in enumerate(header) if name and i < len(raw)}
        if all(_cell(v) is None for v in cells.values()):
            continue
        checked.rows += 1
        if checked.rows > settings.import_max_rows:
            raise PayloadTooLarge(
                f"The file has more than {settings.import_max_rows} data rows, the most one import accepts "
                "(RISKOPS_IMPORT_MAX_ROWS); split it into smaller files.",
                max_rows=settings.import_max_rows,
            )
        _check_row(checked, row_no, cells, who)
    return checked


def _check_row(checked: CheckedFile, row_no: int, raw: dict[str, Any], who: Principal) -> None:
    bad = {name: message for name, v in raw.items() if (message := _character_problem(v)) is not None}
    for name, message in bad.items():
        checked.problem(row_no, name, message)
    cells = {name: _cell(v) for name, v in raw.items() if name not in bad}
    try:
        data = RiskCreate.model_validate(_to_fields(cells))
        new = service.check_new_risk(checked.spec, data, who, loc=())
    except ValidationError as exc:
        for e in exc.errors():
            if (column := _column(e["loc"])) not in bad:
                checked.problem(row_no, column, e["msg"])
        return
    except DomainError as exc:
        for problem in exc.errors or [{"loc": (), "message": exc.detail}]:
            if (column := _column(problem["loc"])) not in bad:
                checked.problem(row_no, column, problem["message"])
        return
    if checked.keep and not checked.error_count:
        checked.risks.append(new)


# Control characters but tab, LF and CR; and the lone surrogates by which undecodable CSV bytes arrive.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _character_problem(value: Any) -> str | None:
    found = _FORBIDDEN.search(value) if isinstance(value, str) else None
    if found is None:
        return None
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"is not UTF-8 text (byte 0x{code - 0xDC00:02X}); save the file as UTF-8"
    return f"contains the control character U+{code:04X}; only tab, line feed and carriage return are allowed"


def _column(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = tuple(str(p) for p in loc)
    if not parts:
        return None
    return _NESTED.get((parts[0], parts[1]), parts[0]) if len(parts) > 1 else parts[0]


def _to_fields(cells: dict[str, Any]) -> dict[str, Any]:
    def rating(prefix: str) -> dict[str, Any] | None:
        likelihood, impact = _whole(cells.get(f"{prefix}_likelihood")), _whole(cells.get(f"{prefix}_impact"))
        return None if likelihood is None and impact is None else {"likelihood": likelihood, "impact": impact}

    fields: dict[str, Any] = {
        k: v for k, v in cells.items() if k in ("title", "description", "category", "owner") and v is not None
    }
    fields["inherent"] = rating("inherent") or {}
    if (residual := rating("residual")) is not None:
        fields["residual"] = residual
    if cells.get("treatment") is not None:
        fields["treatment"] = str(cells["treatment"]).strip().lower()
    if cells.get("tags") is not None:
        fields["tags"] = [t for t in str(cells["tags"]).replace(",", ";").split(";")]
    if cells.get("acceptance_approver") is not None or cells.get("acceptance_expires_at") is not None:
        # A date alone is read as the API reads it (through that day), by the acceptance model itself.
        fields["acceptance"] = {
            "approver": cells.get("acceptance_approver"),
            "expires_at": cells.get("acceptance_expires_at"),
        }
    if (review := cells.get("next_review_at")) is not None:
        day = date_only(review)  # a review date alone is due from the start of that day
        fields["next_review_at"] = review if day is None else datetime.combine(day, time.min, UTC)
    return fields


_WHOLE_NUMBER = re.compile(r"[+-]?\d{1,9}")


def _whole(value: Any) -> Any:
    """A CSV cell is text: a whole number written there is the number (the API takes numbers, not text)."""
    return int(value) if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value) else value


def _cell(value: Any) -> Any:
    """Blank is absent; spreadsheet times carry no zone and are read as UTC; whole floats are integers.

    Dates alone (2027-03-31, or a date cell) stay dates: what a date means depends on the column."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _read_table(filename: str, stream: IO[bytes], settings: Settings) -> Iterator[tuple[int, list[Any]]]:
    """(row number, values from column A), row 1 first when it has any cell; the header is row 1."""
    name = filename.lower()
    if name.endswith(".xlsx"):
        return _xlsx_rows(filename, stream, settings)
    if name.endswith(".csv"):
        return _csv_rows(filename, stream)
    raise _unreadable(f"'{filename}': only .csv and .xlsx files can be imported.")


# ---- CSV ----


_UNDECODED = re.compile("[\udc80-\udcff]")


def _csv_rows(filename: str, stream: IO[bytes]) -> Iterator[tuple[int, list[Any]]]:
    # Bytes that are not UTF-8 arrive as lone surrogates: a row and column to report, not a failed file.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        reader = csv.reader(text)
        row_no = 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise Unprocessable(
                    f"Row {row_no} of '{filename}' cannot be read as CSV: {exc}.",
                    errors=[RowError(row=row_no, column=None, message=str(exc)).model_dump()],
                    error_count=1,
                ) from exc
            if row_no == 1 and any(_UNDECODED.search(v) for v in record):  # UTF-16, Latin-1 ...: the whole file
                raise _unreadable(f"'{filename}' is not a UTF-8 CSV file; save it as UTF-8 (CSV UTF-8).")
            yield row_no, record
            row_no += 1
    finally:
        text.detach()  # the caller's stream stays open


# ---- XLSX ----

_CHUNK = 64 * 1024
# Compressed parts are refused beyond this ratio (a zip bomb reaches about 1000:1); parts under the grace size,
# whose ratio says little, are not judged by it. Excel's own limits bound rows, columns and text.
_MAX_RATIO, _RATIO_GRACE = 100, 1024 * 1024
_MAX_PARTS = 1000
_MAX_SHEET_ROW, _MAX_SHEET_COLUMN, _MAX_TEXT = 1_048_576, 16_384, 32_767
_MAX_STYLES = 65_536
_NUMBER, _DATE, _DATETIME, _TIMEDELTA = 0, 1, 2, 3


class _Unreadable(Exception):
    """The workbook's structure is damaged or beyond what Excel writes."""


def _xlsx_rows(filename: str, stream: IO[bytes], settings: Settings) -> Iterator[tuple[int, list[Any]]]:
    try:
        book = _open_workbook(stream, settings)
        yield from book.rows()
    except (_Unreadable, zipfile.BadZipFile, zipfile.LargeZipFile, expat.ExpatError, KeyError, ValueError) as exc:
        raise _unreadable(f"'{filename}' is not a readable XLSX workbook: {exc}") from exc
    except (RuntimeError, NotImplementedError, EOFError, OSError) as exc:  # encrypted, odd methods, truncated
        raise _unreadable(f"'{filename}' is not a readable XLSX workbook: {exc}") from exc


def _check_part_count(stream: IO[bytes]) -> None:
    """The number of parts, from the zip's end record: zipfile holds an object per part it lists."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(max(0, size - 22 - 65535))  # the end record, 22 bytes, and a comment of up to 64 KiB
    tail = stream.read()
    stream.seek(0)
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        raise _Unreadable("it is not a zip file")
    (parts,) = struct.unpack("<H", tail[end + 10 : end + 12])
    if parts > _MAX_PARTS:
        raise _Unreadable(f"it has {parts} parts; a workbook to import may have at most {_MAX_PARTS}")


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
            raise _Unreadable(f"part {part.filename} is compressed in a way XLSX does not use")
        if part.file_size > _RATIO_GRACE and part.file_size > _MAX_RATIO * max(part.compress_size, 1):
            raise PayloadTooLarge(
                f"The workbook part {part.filename} unpacks from {part.compress_size} to {part.file_size} bytes, "
                f"a ratio beyond the {_MAX_RATIO}:1 an import accepts; it looks like a zip bomb.",
                max_ratio=_MAX_RATIO,
            )


def _open_workbook(stream: IO[bytes], settings: Settings) -> "_Workbook":
    _check_part_count(stream)
    archive = zipfile.ZipFile(stream)
    _check_parts(archive, settings)
    book_path = _relationship(archive, "_rels/.rels", "/officeDocument")
    if book_path is None:
        raise _Unreadable("it names no workbook part")
    first_sheet, date1904 = _first_sheet(archive, book_path)
    rels = _rels_path(book_path)
    sheet = _relationship(archive, rels, None, first_sheet, base=book_path) if first_sheet else None
    if sheet is None:
        raise _Unreadable("it has no worksheet")
    strings = _relationship(archive, rels, "/sharedStrings", base=book_path)
    styles = _relationship(archive, rels, "/styles", base=book_path)
    max_strings = (settings.import_max_rows + 1) * len(COLUMNS)
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
        raise _Unreadable(f"{path} declares a document type")

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


def _first_sheet(archive: zipfile.ZipFile, path: str) -> tuple[str | None, bool]:
    """The relationship id of the workbook's first sheet, and whether its dates count from 1904."""
    first: list[str] = []
    date1904 = [False]

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == "sheet" and not first:  # r:id, in the transitional or the strict namespace
            first.append(next((v for k, v in attrs.items() if k.endswith(" id")), ""))
        elif name == "workbookPr":
            date1904[0] = attrs.get("date1904", "0").lower() in ("1", "true")

    _run(_parse(archive, path, start))
    return (first[0] if first else None), date1904[0]


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
                raise _Unreadable(f"its shared strings exceed the {limit} the row limit could use")
            strings.append("".join(pieces).replace("x005F_", ""))
        elif name == "rPh":
            state["phonetic"] -= 1
        elif name == "t":
            state["in_t"] = False

    def text(data: str) -> None:
        if state["in_t"]:
            state["length"] += len(data)
            if state["length"] > _MAX_TEXT:
                raise _Unreadable(f"shared string {len(strings)} is longer than Excel's {_MAX_TEXT} characters")
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
                raise _Unreadable(f"it has more than {_MAX_STYLES} number formats")
            custom[int(attrs.get("numFmtId", "0"))] = _format_kind(attrs.get("formatCode"))
        elif name == "xf" and where["cellXfs"]:
            if len(kinds) >= _MAX_STYLES:
                raise _Unreadable(f"it has more than {_MAX_STYLES} cell styles")
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
                raise _Unreadable(f"'{letters}' is not a column")
            number = number * 26 + ord(letter) - 64
        if not 1 <= number <= _MAX_SHEET_COLUMN or len(letters) > 3:
            raise _Unreadable(f"column {letters} is beyond Excel's last column, XFD")
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
                    raise _Unreadable(f"row {self.row_no} is beyond Excel's last row, {_MAX_SHEET_ROW}")
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
                raise _Unreadable(f"a cell of row {self.row_no} holds more than Excel's {_MAX_TEXT} characters")
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
                raise _Unreadable(f"cell {ref} names shared string {index}, which does not exist")
            return self.strings[index]
        if kind in ("str", "e"):
            return text
        if kind == "b":
            return text.strip() in ("1", "true")
        if kind == "d":
            value: Any = from_ISO8601(text)  # type: ignore[no-untyped-call]
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
