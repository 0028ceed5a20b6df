"""Reading an uploaded register a row at a time: CSV here, XLSX by the streaming reader of risks.workbook."""

import csv
import io
import re
from collections.abc import Iterator
from typing import IO, Any

from riskops.config import Settings
from riskops.errors import Unprocessable, field_error
from riskops.risks import workbook


def unreadable(detail: str) -> Unprocessable:
    """The upload as a whole cannot be read as a register (type, encoding, damage): 422 naming the file."""
    return Unprocessable(detail, errors=[field_error(("body", "file"), "not a readable .csv or .xlsx register")])


def read_table(filename: str, stream: IO[bytes], settings: Settings, columns: int) -> Iterator[tuple[int, list[Any]]]:
    """(row number, values from column A), row 1 first when it has any cell; the header is row 1. A register has
    at most `columns` columns."""
    name = filename.lower()
    if name.endswith(".xlsx"):
        return _xlsx_rows(filename, stream, settings, columns)
    if name.endswith(".csv"):
        return _csv_rows(filename, stream)
    raise unreadable(f"'{filename}': only .csv and .xlsx files can be imported.")


def _xlsx_rows(filename: str, stream: IO[bytes], settings: Settings, columns: int) -> Iterator[tuple[int, list[Any]]]:
    try:
        yield from workbook.rows(stream, settings, columns)
    except workbook.Unreadable as exc:
        raise unreadable(f"'{filename}' is not a readable XLSX workbook: {exc}") from exc


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
                    errors=[{"row": row_no, "column": None, "message": str(exc)}],
                    error_count=1,
                ) from exc
            if row_no == 1 and any(_UNDECODED.search(v) for v in record):  # UTF-16, Latin-1 ...: the whole file
                raise unreadable(f"'{filename}' is not a UTF-8 CSV file; save it as UTF-8 (CSV UTF-8).")
            yield row_no, record
            row_no += 1
    finally:
        text.detach()  # the caller's stream stays open
