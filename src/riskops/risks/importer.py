"""Import a register from CSV or XLSX: every problem of the header and the rows reported in one answer, by row
and column with the value seen and what was expected; all rows or none.

The work is bounded before it starts: the upload's size, what an XLSX (a zip) unpacks to, and the number of rows
(RISKOPS_IMPORT_MAX_BYTES, _MAX_UNCOMPRESSED_BYTES, _MAX_ROWS). Both formats are read as streams, a row at a time
(risks.spreadsheet), so memory follows the rows kept. Every row is checked and scored against the current matrix
before the write transaction: a new risk as POST /risks checks it, a row naming an existing risk's reference as
PATCH and a reassessment check it (risks.matching). The write transaction only writes what was checked.
"""

import io
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from pydantic import BaseModel, Field
from sqlmodel import Session

from riskops import migrations
from riskops.apikeys.service import Principal
from riskops.config import Settings
from riskops.db import Database
from riskops.errors import PayloadTooLarge, Unprocessable, field_error
from riskops.risks import cells, headers, matching, service, spreadsheet
from riskops.risks.cells import DateFormat
from riskops.risks.headers import DATE_FIELDS, Header
from riskops.risks.import_rows import MAX_ERRORS, CheckedFile, RowError, Skipped, check_block, read_cell
from riskops.risks.matching import OnDuplicate, Register
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec

Rows = Generator[tuple[int, list[Any]], None, None]

# An import this large can change the register's shape enough that the query planner's statistics mislead it.
REFRESH_STATISTICS_AT = 1000
# Rows checked together: the risks their references name are read in one statement.
_BLOCK = 500
# The columns an imported sheet may have (the service's export has 28): with the row limit, it bounds the shared
# strings an XLSX may make the reader keep.
_MAX_COLUMNS = 64


@dataclass(frozen=True)
class ImportOptions:
    dry_run: bool = False
    mapping: Mapping[str, str | None] = field(default_factory=dict)  # a header of the file -> a field, or None
    date_format: DateFormat | None = None  # None: found in the file, where a day or month above 12 tells
    sheet: str | None = None  # an XLSX sheet's name; None: the first
    on_duplicate: OnDuplicate = "error"


class ImportReport(BaseModel):
    dry_run: bool
    rows: int
    mapping: dict[str, str] = Field(description="Each column of the file that was read, and the field it filled.")
    ignored: list[str] = Field(description="The columns of the file that fill no field.")
    date_format: DateFormat | None = Field(description="How day/month dates were read (given or found); null: none.")
    created: list[str]
    updated: list[str] = Field(description="Risks a row changed (for a dry run: would change).")
    unchanged: list[str] = Field(description="Risks a row names and leaves as they are.")
    skipped: list[Skipped] = Field(description="Probable duplicates left out (on_duplicate=skip).")
    errors: list[RowError] = Field(description=f"The first {MAX_ERRORS} problems, in file order.")
    error_count: int = Field(description="Every problem found in the file, listed or not.")


class Deferred(Exception):
    """The file has more data rows than the caller will import while a client waits."""


def import_file(
    db: Database, filename: str, stream: IO[bytes], who: Principal, settings: Settings,
    options: ImportOptions = ImportOptions(), *, defer_beyond: int | None = None,
    progress: Callable[[int], None] | None = None, then: Callable[[Session, ImportReport], None] | None = None,
) -> ImportReport:  # fmt: skip
    """Check the whole file with no transaction open, then write every row in one write transaction, or none.

    `progress` hears the rows checked so far, a block at a time; `then` gets the report in the transaction that
    writes the rows (a dry run's own). Beyond `defer_beyond` data rows: Deferred, nothing written."""
    with db.read() as session:
        matrix = matrices.current(session)
    register = Register(db)
    checked = check_file(
        filename, stream, matrix.version, matrix.parsed(), who, settings, register, options,
        defer_beyond=defer_beyond, progress=progress,
    )  # fmt: skip
    if options.dry_run:
        report = _report(checked, options, [], checked.changing)
        if then is not None:
            with db.write() as session:
                then(session, report)
        return report
    if checked.error_count:
        raise checked.refusal(f"{checked.error_count} problem(s) in the file; nothing was imported.")
    with db.write() as session:
        created = service.create_checked(session, matrix.version, checked.spec, checked.risks, who, settings)
        report = _report(checked, options, created, matching.apply(session, checked.updates, who, settings))
        if then is not None:
            then(session, report)
    if len(created) >= REFRESH_STATISTICS_AT:
        with db.engine.connect() as conn:
            migrations.analyze(conn)
    return report


def check_size(stream: IO[bytes], settings: Settings) -> None:
    """RISKOPS_IMPORT_MAX_BYTES, on the upload as it came."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    if size > settings.import_max_bytes:
        raise PayloadTooLarge(
            f"The file is {size} bytes, more than the {settings.import_max_bytes} an import accepts "
            "(RISKOPS_IMPORT_MAX_BYTES).",
            max_bytes=settings.import_max_bytes,
        )


def check_file(
    filename: str, stream: IO[bytes], matrix_version: int, spec: MatrixSpec, who: Principal, settings: Settings,
    register: Register, options: ImportOptions = ImportOptions(), *, defer_beyond: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> CheckedFile:  # fmt: skip
    """Read the file a row at a time and check each row on `spec`; stop at the row cap."""
    check_size(stream, settings)
    checked = CheckedFile(filename, matrix_version, spec, options.on_duplicate, keep=not options.dry_run)
    checked.date_format = options.date_format

    def read() -> Rows:
        return spreadsheet.read_table(filename, stream, settings, _MAX_COLUMNS, options.sheet)

    table = read()
    first = next(table, None)
    if first is None:
        raise spreadsheet.unreadable(f"'{filename}' is empty; the first row must name the columns.")
    checked.header = headers.read_header(first[1] if first[0] == 1 else [], options.mapping)
    for p in checked.header.problems:
        checked.problem(1, p.column, p.message, p.value, p.expected)
    block: list[tuple[int, dict[str, Any]]] = []
    try:
        for row_no, raw in table:
            row = {name: raw[i] for i, name in checked.header.positions.items() if i < len(raw)}
            if all(read_cell(v) is None for v in row.values()):
                continue
            checked.rows += 1
            if checked.rows > settings.import_max_rows:
                raise PayloadTooLarge(
                    f"The file has more than {settings.import_max_rows} data rows, the most one import accepts "
                    "(RISKOPS_IMPORT_MAX_ROWS); split it into smaller files.",
                    max_rows=settings.import_max_rows,
                )
            if defer_beyond is not None and checked.rows > defer_beyond:
                raise Deferred(checked.rows)
            if checked.date_format is None:
                checked.date_format = _date_format(row_no, row, stream, read, checked.header)
            block.append((row_no, row))
            if len(block) == _BLOCK:
                check_block(checked, block, register, who)
                block = []
                if progress is not None:
                    progress(checked.rows)
        check_block(checked, block, register, who)
        if progress is not None:
            progress(checked.rows)
    finally:
        table.close()  # read to its end, or left on a refusal: either way the caller's stream is let go
    return checked


def _date_format(
    row_no: int, row: dict[str, Any], stream: IO[bytes], read: Callable[[], Rows],
    header: Header,
) -> DateFormat | None:  # fmt: skip
    """The order a day/month date of this row is written in, when it tells (a number above 12 decides). A date
    that reads both ways sends a second reader through the file for one that tells; none tells: a 422."""
    local = [(name, v.strip()) for name, v in row.items() if name in DATE_FIELDS and isinstance(v, str)]
    local = [(name, text) for name, text in local if text and not cells.is_iso(text)]
    for _, text in local:
        fits = cells.date_formats_fitting(text)
        if len(fits) == 1:
            return fits.pop()
    ambiguous = next(((n, t) for n, t in local if len(cells.date_formats_fitting(t)) == 2), None)
    if ambiguous is None:
        return None
    position = stream.tell()
    rescan = read()
    try:
        positions = [i for i, name in header.positions.items() if name in DATE_FIELDS]
        for _, raw in rescan:
            for i in positions:
                value = raw[i] if i < len(raw) else None
                fits = cells.date_formats_fitting(value.strip()) if isinstance(value, str) else set()
                if len(fits) == 1:
                    return fits.pop()
    finally:
        rescan.close()
        stream.seek(position)
    name, text = ambiguous
    message = f"'{text}' reads as day/month and as month/day; set date_format to dmy (15/01/2027) or mdy (01/15/2027)"
    raise Unprocessable(
        f"Dates such as '{text}' (row {row_no}, {name}) read as day/month and as month/day, and no date in the "
        "file tells which: set date_format to dmy or mdy.",
        errors=[field_error(("query", "date_format"), message)],
    )


def _report(checked: CheckedFile, options: ImportOptions, created: list[str], updated: list[str]) -> ImportReport:
    header = checked.header
    return ImportReport(
        dry_run=options.dry_run, rows=checked.rows, mapping=header.mapping, ignored=header.ignored,
        date_format=checked.date_format, created=created, updated=updated, unchanged=checked.unchanged,
        skipped=checked.skipped, errors=checked.errors, error_count=checked.error_count,
    )  # fmt: skip
