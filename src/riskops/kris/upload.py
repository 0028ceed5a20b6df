"""Values from a CSV file (columns kri, at, value; a header row): read as a stream, a row at a time, every row
checked before anything is written; then all are recorded, or none. Bounded like the register's imports
(RISKOPS_IMPORT_MAX_BYTES, RISKOPS_IMPORT_MAX_ROWS)."""

import codecs
import csv
import math
from collections import defaultdict
from datetime import datetime
from typing import IO

from sqlmodel import Session

from riskops.apikeys.service import Principal
from riskops.config import Settings
from riskops.errors import NotFound, PayloadTooLarge, Unprocessable, field_error
from riskops.kris import service, values
from riskops.kris.models import Kri
from riskops.risks.importer import check_size

COLUMNS = ("kri", "at", "value")
MAX_LISTED = 1000  # problems listed in a refusal (all are counted)


def record_file(session: Session, stream: IO[bytes], who: Principal, settings: Settings) -> values.Recorded:
    check_size(stream, settings)
    reader = csv.reader(codecs.iterdecode(stream, "utf-8-sig"))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise Unprocessable(f"The file is not UTF-8 CSV: {exc}.", errors=[field_error(("file",), "not CSV")]) from None
    if sorted(header) != sorted(COLUMNS):
        raise Unprocessable(
            f"The header must name the columns {', '.join(COLUMNS)}; it names {', '.join(header) or 'none'}.",
            errors=[field_error(("file", 1), "header: kri,at,value")],
        )
    where = {name: header.index(name) for name in COLUMNS}
    kris: dict[str, Kri | None] = {}
    rows: dict[int, list[tuple[int, values.Measurement]]] = defaultdict(list)
    problems: list[dict[str, object]] = []
    count = 0
    try:
        for row_no, row in enumerate(reader, start=2):
            count += 1
            if count > settings.import_max_rows:
                raise PayloadTooLarge(
                    f"The file has more than {settings.import_max_rows} rows (RISKOPS_IMPORT_MAX_ROWS).",
                    max_rows=settings.import_max_rows,
                )
            cells = {name: row[i].strip() if i < len(row) else "" for name, i in where.items()}
            found = _checked(session, kris, row_no, cells, problems)
            if found is not None:
                rows[found[0].id].append((row_no, found[1]))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise Unprocessable(f"The file is not UTF-8 CSV: {exc}.", errors=[field_error(("file",), "not CSV")]) from None
    if problems:
        raise Unprocessable(
            f"{len(problems)} problem(s) in the file; nothing was recorded.", errors=problems[:MAX_LISTED],
            problems=len(problems),
        )  # fmt: skip
    recorded = unchanged = 0
    for kri_id in sorted(rows):  # locked in id order: no deadlock with another upload
        kri = service.get_kri(session, kri_id, for_update=True)
        numbered = rows[kri_id]
        done = values.record(
            session, kri, [m for _, m in numbered], "csv", who, settings, loc=("file",),
            rows=[row_no for row_no, _ in numbered],
        )  # fmt: skip
        recorded, unchanged = recorded + done.recorded, unchanged + done.unchanged
    return values.Recorded(recorded=recorded, unchanged=unchanged)


def _checked(
    session: Session, kris: dict[str, Kri | None], row_no: int, cells: dict[str, str],
    problems: list[dict[str, object]],
) -> tuple[Kri, values.Measurement] | None:  # fmt: skip
    """The row's KRI and measurement, or None with its problems noted, each naming the row and the column."""
    ref = cells["kri"]
    if ref not in kris:
        try:
            kris[ref] = session.get(Kri, service.parse_kri_ref(ref)) if len(ref) <= 20 else None
        except NotFound:
            kris[ref] = None
    kri = kris[ref]
    bad = len(problems)
    if kri is None:
        problems.append(field_error(("file", row_no, "kri"), f"no KRI is '{ref[:40]}'"))
    at = None
    try:
        at = datetime.fromisoformat(cells["at"])
        if at.tzinfo is None:
            problems.append(field_error(("file", row_no, "at"), "a timestamp needs its time zone (Z or +hh:mm)"))
    except ValueError:
        problems.append(field_error(("file", row_no, "at"), "not an ISO 8601 timestamp"))
    try:
        value = float(cells["value"])
        if not math.isfinite(value):
            raise ValueError(cells["value"])
    except ValueError:
        problems.append(field_error(("file", row_no, "value"), "not a finite number"))
    if len(problems) > bad or kri is None or at is None:
        return None
    return kri, values.Measurement(at, value)
