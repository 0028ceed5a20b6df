"""Import a register from CSV or XLSX: every bad row reported by row and column; all rows or none."""

import csv
import io
from datetime import UTC, datetime, time
from typing import IO, Any

from openpyxl import load_workbook
from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from riskops.apikeys.service import Principal
from riskops.errors import BadRequest, DomainError, PayloadTooLarge, Unprocessable
from riskops.risks import service
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


class RowError(BaseModel):
    row: int
    column: str | None
    message: str


class ImportReport(BaseModel):
    dry_run: bool
    rows: int
    created: list[str]
    errors: list[RowError]


def read_upload(stream: IO[bytes], max_bytes: int) -> bytes:
    content = stream.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise PayloadTooLarge(f"The file is larger than the {max_bytes} bytes an import accepts.")
    return content


def import_file(session: Session, filename: str, content: bytes, who: Principal, *, dry_run: bool) -> ImportReport:
    """Validate and create every row in the caller's unit of work; raise on any error, roll back on dry run."""
    header, rows = _read_table(filename, content)
    errors = [RowError(row=1, column=name, message="unknown column") for name in header if name and name not in COLUMNS]
    errors += [
        RowError(row=1, column=name, message="required column missing") for name in REQUIRED if name not in header
    ]
    if errors:
        raise Unprocessable(
            "The header row does not match the import columns.", errors=[e.model_dump() for e in errors]
        )
    created: list[str] = []
    for row_no, cells in rows:
        try:
            data = RiskCreate.model_validate(_to_fields(cells))
            risk = service.create_risk(session, data, who, loc=())
            created.append(risk.reference)
        except ValidationError as exc:
            errors += [RowError(row=row_no, column=_column(e["loc"]), message=e["msg"]) for e in exc.errors()]
        except DomainError as exc:
            errors += [RowError(row=row_no, column=_column(e["loc"]), message=e["message"]) for e in exc.errors or []]
            if not exc.errors:
                errors.append(RowError(row=row_no, column=None, message=exc.detail))
    if errors and not dry_run:
        raise Unprocessable(
            f"{len(errors)} problem(s) in the file; nothing was imported.", errors=[e.model_dump() for e in errors]
        )
    if dry_run:
        session.rollback()
    return ImportReport(dry_run=dry_run, rows=len(rows), created=[] if dry_run else created, errors=errors)


def _column(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = tuple(str(p) for p in loc)
    if not parts:
        return None
    return _NESTED.get((parts[0], parts[1]), parts[0]) if len(parts) > 1 else parts[0]


def _to_fields(cells: dict[str, Any]) -> dict[str, Any]:
    def rating(prefix: str) -> dict[str, Any] | None:
        likelihood, impact = cells.get(f"{prefix}_likelihood"), cells.get(f"{prefix}_impact")
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


def _xlsx_value(cell: Any) -> Any:  # a read-only sheet's cell; the stubs type them as editable cells
    """openpyxl reads every date cell as a datetime; one whose format shows no time of day is a date."""
    value = cell.value
    if isinstance(value, datetime) and cell.is_date and not any(c in cell.number_format.lower() for c in "hs"):
        return value.date()
    return value


def _read_table(filename: str, content: bytes) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """(header, [(spreadsheet row number, {column: value})]); the header is row 1."""
    if filename.lower().endswith(".xlsx"):
        try:
            sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).worksheets[0]
            table = [[_xlsx_value(c) for c in r] for r in sheet.iter_rows()]
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise BadRequest(f"'{filename}' is not a readable XLSX workbook: {exc}") from exc
    elif filename.lower().endswith(".csv"):
        try:
            table = [list(r) for r in csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""))]
        except (UnicodeDecodeError, csv.Error) as exc:
            raise BadRequest(f"'{filename}' is not a UTF-8 CSV file: {exc}") from exc
    else:
        raise BadRequest(f"'{filename}': only .csv and .xlsx files can be imported.")
    if not table:
        raise BadRequest(f"'{filename}' is empty; the first row must name the columns.")
    header = [str(h).strip().lower() if h is not None else "" for h in table[0]]
    rows = []
    for row_no, raw in enumerate(table[1:], start=2):
        cells = {name: _cell(v) for name, v in zip(header, raw, strict=False) if name}
        if any(v is not None for v in cells.values()):
            rows.append((row_no, cells))
    return header, rows
