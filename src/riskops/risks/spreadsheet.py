"""Reading an uploaded register a row at a time, as spreadsheet programs save it: a CSV in UTF-8 (with or without
a BOM), UTF-16 (with its BOM) or Windows-1252, separated by commas, semicolons or tabs; or a sheet of an XLSX
workbook, by the streaming reader of risks.workbook."""

import codecs
import csv
import io
import itertools
from collections.abc import Generator
from typing import IO, Any

from riskops.config import Settings
from riskops.errors import Unprocessable, field_error
from riskops.risks import workbook

_CHUNK = 64 * 1024
DELIMITERS = (",", ";", "\t")


def unreadable(detail: str) -> Unprocessable:
    """The upload as a whole cannot be read as a register (type, encoding, damage): 422 naming the file."""
    return Unprocessable(detail, errors=[field_error(("body", "file"), "not a readable .csv or .xlsx register")])


def read_table(
    filename: str, stream: IO[bytes], settings: Settings, columns: int, sheet: str | None = None
) -> Generator[tuple[int, list[Any]], None, None]:
    """(row number, values from column A), row 1 first when it has any cell; the header is row 1. A register has
    at most `columns` columns. `sheet` names an XLSX sheet (default the first)."""
    name = filename.lower()
    if name.endswith(".xlsx"):
        return _xlsx_rows(filename, stream, settings, columns, sheet)
    if name.endswith(".csv"):
        return _csv_rows(filename, stream)
    raise unreadable(f"'{filename}': only .csv and .xlsx files can be imported.")


# ---- XLSX ----


def _xlsx_rows(
    filename: str, stream: IO[bytes], settings: Settings, columns: int, sheet: str | None
) -> Generator[tuple[int, list[Any]], None, None]:
    try:
        yield from workbook.rows(stream, settings, columns, sheet)
    except workbook.Unreadable as exc:
        raise unreadable(f"'{filename}' is not a readable XLSX workbook: {exc}") from exc
    except workbook.NoSuchSheet as exc:
        listed = ", ".join(f"'{name}'" for name in exc.sheets)
        raise Unprocessable(
            f"The workbook has no sheet '{exc.sheet}'; its sheets: {listed}.",
            errors=[field_error(("query", "sheet"), f"no such sheet; the workbook's sheets: {listed}")],
            sheets=exc.sheets,
        ) from exc


# ---- CSV ----


def encoding(stream: IO[bytes]) -> str:
    """The file's encoding: by its byte order mark; else UTF-8 if every byte of it is, else Windows-1252 (what
    Excel's plain "CSV" writes on Windows). The stream is left at its start."""
    stream.seek(0)
    head = stream.read(4)
    stream.seek(0)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := stream.read(_CHUNK):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1252"
    finally:
        stream.seek(0)
    return "utf-8"


def delimiter(header_line: str) -> str:
    """The delimiter that splits the header row into the most cells (a comma when none splits it).

    csv.Sniffer guesses from how alike the first lines are, and guessed wrong on CRLF files and one-line samples."""

    def cells(delimiter: str) -> int:
        try:
            return len(next(csv.reader([header_line], delimiter=delimiter), []))
        except csv.Error:  # a field beyond the csv module's limit: the reader says so, row 1
            return 0

    return max(DELIMITERS, key=cells)


def _csv_rows(filename: str, stream: IO[bytes]) -> Generator[tuple[int, list[Any]], None, None]:
    # Bytes that are no character of the encoding arrive as lone surrogates: a row and column to report.
    name = encoding(stream)
    text = io.TextIOWrapper(stream, encoding=name, errors="surrogateescape", newline="")
    row_no = 1
    try:
        first = text.readline()
        reader = csv.reader(itertools.chain([first] if first else [], text), delimiter=delimiter(first))
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
            yield row_no, record
            row_no += 1
    except UnicodeDecodeError as exc:  # a UTF-16 file cut off inside a character
        raise unreadable(f"'{filename}' is not readable as {name} text after row {row_no - 1}: {exc}.") from exc
    finally:
        text.detach()  # the caller's stream stays open
