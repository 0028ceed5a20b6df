"""Import a register from CSV or XLSX: every bad row reported by row and column; all rows or none.

The work is bounded before it starts: the upload's size, what an XLSX (a zip) unpacks to, and the number of rows
(RISKOPS_IMPORT_MAX_BYTES, _MAX_UNCOMPRESSED_BYTES, _MAX_ROWS). Both formats are read as streams, a row at a time
(risks.spreadsheet), so memory follows the rows kept. Every row is checked and scored against the current matrix
before the write transaction; that transaction only inserts.
"""

import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import IO, Any

from pydantic import BaseModel, Field, ValidationError

from riskops import migrations
from riskops.apikeys.service import Principal
from riskops.config import Settings
from riskops.db import Database
from riskops.errors import DomainError, PayloadTooLarge, Unprocessable
from riskops.risks import service, spreadsheet
from riskops.risks.bulk import NewRisk
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
# An import this large can change the register's shape enough that the query planner's statistics mislead it.
REFRESH_STATISTICS_AT = 1000


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
    risks: list[NewRisk] = field(default_factory=list)
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
    if len(created) >= REFRESH_STATISTICS_AT:
        with db.engine.connect() as conn:
            migrations.analyze(conn)
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
    table = spreadsheet.read_table(filename, stream, settings, len(COLUMNS))
    first = next(table, None)
    if first is None:
        raise spreadsheet.unreadable(f"'{filename}' is empty; the first row must name the columns.")
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
