"""The register as a file: its columns (one contract for the CSV, the XLSX Register sheet and the import that reads
them back), CSV safe from formula injection, and the live register's export for GET /api/v1/risks/export and
`riskops export --live`. A review's snapshot exports its register through the same rows (riskops.reviews.exports).

The live register is read in keyset batches over the id by the risk list's read model, each batch in a read
transaction of its own that ends before the batch is written out: memory stays flat whatever the register's size,
and a slow download holds no transaction open. A risk changed while the file is written shows as its batch read it.
"""

import codecs
import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any, Literal, TypeGuard, get_args

import orjson
import xlsxwriter  # type: ignore[import-untyped]  # ships no type hints and PyPI has no stubs for it

from riskops.db import Database
from riskops.risks import queries, reads
from riskops.risks.queries import RiskFilter
from riskops.risks.sheets import Formats, Sheet, excel_datetime

CSV_COLUMNS: tuple[str, ...] = (
    "reference",
    "title",
    "type",
    "statement_cause",
    "statement_event",
    "statement_consequence",
    "source",
    "objectives",
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
    "target_likelihood",
    "target_impact",
    "target_score",
    "target_level",
    "target_date",
    "score",
    "level",
    "outside_appetite",
    "beyond_tolerance",
    "appetite_response",
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
    "kri_status",
)
"""The register's columns, in order; a stable contract for CSV and the XLSX "Register" sheet.

reference, title, type (threat or opportunity), statement_cause, statement_event, statement_consequence (the risk
statement's parts), source, objectives (joined by ";"),
category, owner, status, treatment; inherent_likelihood, inherent_impact, inherent_score,
inherent_level; residual_likelihood, residual_impact, residual_score, residual_level (empty without a residual
rating); target_likelihood, target_impact, target_score, target_level, target_date (empty without a target);
score, level (the current rating); outside_appetite, beyond_tolerance, appetite_response (what answers a risk
above its appetite: accepted, target or none; empty within it); acceptance_approver, acceptance_expires_at,
acceptance_expired (empty without an acceptance); controls (how many), controls_implemented (how many are implemented);
last_reviewed_at, next_review_at, overdue; review_in_cycle (the cycle's review outcome, if any; empty in the live
register); tags (joined by ";"); closed_at, materialised_at; kri_status (the worst status of the risk's key risk
indicators: red, amber or green; empty without one). Timestamps are ISO 8601, booleans true/false.
"""

DATE_COLUMNS = frozenset(
    {"acceptance_expires_at", "last_reviewed_at", "next_review_at", "closed_at", "materialised_at"}
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK_BYTES = 64 * 1024  # what a streamed file is sent in: a send per line is slow

Format = Literal["csv", "xlsx", "json"]
FORMATS: tuple[Format, ...] = get_args(Format)
MEDIA_TYPES: dict[Format, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
BATCH = 500


# ---- rows ----


def register_row(risk: dict[str, Any]) -> dict[str, Any]:
    """One risk, in snapshot form or as RiskPublic data (the same fields), as CSV_COLUMNS -> raw value (str, int,
    bool or None; timestamps stay ISO strings)."""
    inherent = risk.get("inherent") or {}
    residual = risk.get("residual") or {}
    target = risk.get("target") or {}
    acceptance = risk.get("acceptance") or {}
    controls = risk.get("controls") or []
    row = {
        "reference": risk.get("reference"),
        "title": risk.get("title"),
        "type": risk.get("type"),
        "statement_cause": risk.get("cause"),
        "statement_event": risk.get("event"),
        "statement_consequence": risk.get("consequence"),
        "source": risk.get("source"),
        "objectives": ";".join(risk.get("objectives") or []),
        "category": risk.get("category"),
        "owner": risk.get("owner"),
        "status": risk.get("status"),
        "treatment": risk.get("treatment"),
        **{f"inherent_{k}": inherent.get(k) for k in ("likelihood", "impact", "score", "level")},
        **{f"residual_{k}": residual.get(k) for k in ("likelihood", "impact", "score", "level")},
        **{f"target_{k}": target.get(k) for k in ("likelihood", "impact", "score", "level", "date")},
        "score": risk.get("score"),
        "level": risk.get("level"),
        "outside_appetite": risk.get("outside_appetite"),
        "beyond_tolerance": risk.get("beyond_tolerance"),
        "appetite_response": risk.get("appetite_response"),
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
        "kri_status": risk.get("kri_status"),
    }
    return {column: row[column] for column in CSV_COLUMNS}


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


def register_csv(risks: Iterable[dict[str, Any]]) -> Iterator[str]:
    """RFC 4180 CSV (CRLF line ends): a header of CSV_COLUMNS, then a line per risk, read as the risks come."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values: Iterable[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(CSV_COLUMNS)
    for risk in risks:
        yield line(_csv_value(v) for v in register_row(risk).values())


def csv_file(lines: Iterable[str], *, bom: bool = True) -> Iterator[bytes]:
    """CSV lines as UTF-8 in chunks, after a byte-order mark with `bom`: without one, Excel reads a CSV in the
    machine's legacy code page and garbles every title that is not ASCII."""
    chunk = bytearray(codecs.BOM_UTF8 if bom else b"")
    for text in lines:
        chunk += text.encode()
        if len(chunk) >= CHUNK_BYTES:
            yield bytes(chunk)
            chunk.clear()
    if chunk:
        yield bytes(chunk)


# ---- XLSX ----


def _xlsx_value(column: str, value: Any) -> Any:
    if isinstance(value, str) and column in DATE_COLUMNS:
        try:
            return excel_datetime(value)
        except ValueError:
            return value
    return value


# Columns read more than a few characters wide; every other is 10.
_WIDTHS = {"reference": 10, "title": 40, "category": 16, "owner": 24, "status": 8, "statement_event": 40}


def register_sheet(workbook: Any, formats: Formats, risks: Iterable[dict[str, Any]]) -> None:
    """The Register sheet: CSV_COLUMNS as a frozen, filtered header, then a typed row per risk."""
    register = Sheet(workbook, formats, "Register")
    register.widths(*(_WIDTHS.get(column, 10) for column in CSV_COLUMNS))
    register.table(CSV_COLUMNS)
    for risk in risks:
        register.append(_xlsx_value(k, v) for k, v in register_row(risk).items())
    register.filter()


def write_register(risks: Iterable[dict[str, Any]], out: IO[bytes]) -> None:
    """A workbook of one Register sheet, written to `out` as the risks come."""
    with xlsxwriter.Workbook(out, {"constant_memory": True}) as workbook:
        register_sheet(workbook, Formats(workbook), risks)


# ---- the live register ----


def is_format(name: str) -> TypeGuard[Format]:
    return name in FORMATS


def check(db: Database, filters: RiskFilter) -> None:
    """Refuse unknown filter values (422 naming the parameter) before the answer starts: once its first bytes are
    sent, a problem can no longer be told."""
    with db.read() as session:
        queries.check_filter(session, filters)


def risks(db: Database, filters: RiskFilter, *, batch: int = BATCH) -> Iterator[dict[str, Any]]:
    """Every risk the filters select as RiskPublic data, by id, read `batch` at a time by the list's read model."""
    cursor: str | None = None
    while True:
        with db.read() as session:
            page = orjson.loads(reads.read_page(session, filters, sort="id", cursor=cursor, limit=batch))
        yield from page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return


def export(db: Database, filters: RiskFilter, file_format: Format, *, bom: bool = True) -> Iterator[bytes]:
    """The live register's file in chunks (CSV after a UTF-8 byte-order mark with `bom`). Call check() first."""
    rows = risks(db, filters)
    if file_format == "csv":
        return csv_file(register_csv(rows), bom=bom)
    if file_format == "json":
        return _json_array(rows)
    return _workbook(rows)


def _json_array(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    chunk = bytearray(b"[")
    for n, risk in enumerate(rows):
        chunk += (b"," if n else b"") + orjson.dumps(risk)
        if len(chunk) >= CHUNK_BYTES:
            yield bytes(chunk)
            chunk.clear()
    yield bytes(chunk + b"]")


def _workbook(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    # A zip's directory comes last: the workbook is finished in a temporary file, then sent from it.
    with tempfile.TemporaryFile() as out:
        write_register(rows, out)
        out.seek(0)
        while chunk := out.read(CHUNK_BYTES):
            yield chunk
