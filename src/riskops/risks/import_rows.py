"""The rows of an imported register checked, one at a time and nothing written: a new risk as POST /risks checks
it, a row naming an existing risk as PATCH and a reassessment check it (risks.matching), a probable duplicate held
for the on_duplicate option. Every problem is kept with its row, column, the value read and what was expected."""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from riskops.apikeys.service import Principal
from riskops.errors import DomainError, NotFound, Unprocessable, field_error
from riskops.risks import cells, matching, service
from riskops.risks.bulk import NewRisk
from riskops.risks.cells import DateFormat
from riskops.risks.fields import date_only
from riskops.risks.headers import DATE_FIELDS, STATEMENT, Header
from riskops.risks.matching import DuplicateKey, OnDuplicate, Register, Update
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import Risk, RiskCreate, reference

_NESTED = {("inherent", "likelihood"): "inherent_likelihood", ("inherent", "impact"): "inherent_impact",
           ("residual", "likelihood"): "residual_likelihood", ("residual", "impact"): "residual_impact",
           ("acceptance", "approver"): "acceptance_approver",
           ("acceptance", "expires_at"): "acceptance_expires_at",
           ("target", "likelihood"): "target_likelihood", ("target", "impact"): "target_impact",
           ("target", "date"): "target_date"}  # fmt: skip
_FIELD_COLUMN = {"target": "target_likelihood", **{field: column for column, field in STATEMENT.items()}}

# The answer lists this many problems and counts them all.
MAX_ERRORS = 1000


class RowError(BaseModel):
    row: int
    column: str | None = Field(description="The import field (see `mapping` for the file's column).")
    message: str
    value: str | None = Field(default=None, description="The cell as read from the file.")
    expected: str | None = Field(default=None, description="What the column takes.")


class Skipped(BaseModel):
    row: int
    duplicate_of: str = Field(description="The open risk (R-0042) or the earlier row (row 7) it repeats.")


@dataclass
class CheckedFile:
    """A file read and every row checked on one matrix version; nothing written. Rows are kept while all pass
    (and not at all for a dry run)."""

    filename: str
    matrix_version: int
    spec: MatrixSpec
    on_duplicate: OnDuplicate = "error"
    keep: bool = True
    header: Header = field(default_factory=Header)
    date_format: DateFormat | None = None
    rows: int = 0
    risks: list[NewRisk] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    changing: list[str] = field(default_factory=list)  # the references of the risks rows change
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    new_rows: dict[DuplicateKey, int] = field(default_factory=dict)  # each new risk's title and owner -> its row
    named: dict[int, int] = field(default_factory=dict)  # a risk a row names -> that row

    def problem(
        self, row: int, column: str | None, message: str, value: Any = None, expected: str | None = None
    ) -> None:
        self.error_count += 1
        self.risks.clear()  # the file will not be imported: keep no rows
        self.updates.clear()
        if len(self.errors) < MAX_ERRORS:
            shown = value.isoformat() if isinstance(value, date) else _shown(value)
            self.errors.append(RowError(row=row, column=column, message=message, value=shown, expected=expected))

    def refusal(self, detail: str) -> Unprocessable:
        listed = f" The first {MAX_ERRORS} are listed." if self.error_count > MAX_ERRORS else ""
        return Unprocessable(
            f"{detail}{listed}", errors=[e.model_dump() for e in self.errors], error_count=self.error_count,
            mapping=self.header.mapping, ignored=self.header.ignored,
        )  # fmt: skip


def check_block(
    checked: CheckedFile, block: list[tuple[int, dict[str, Any]]], register: Register, who: Principal
) -> None:
    """Check rows in file order: (row number, field -> cell); the risks they name are read in one statement."""
    ids = [risk_id for _, row in block if (risk_id := _risk_id(row.get("reference"))) is not None]
    known = register.risks(ids)
    for row_no, row in block:
        _check_row(checked, row_no, row, register, known, who)


def _risk_id(value: Any) -> int | None:
    text = read_cell(value)
    try:
        return None if text is None else service.parse_risk_ref(str(text))
    except DomainError:
        return None


def _check_row(
    checked: CheckedFile, row_no: int, raw: dict[str, Any], register: Register, known: dict[int, Risk],
    who: Principal,
) -> None:  # fmt: skip
    bad = {name: message for name, v in raw.items() if (message := _character_problem(v)) is not None}
    for name, message in bad.items():
        checked.problem(row_no, name, message, raw[name], _expected(checked, name))
    row = {name: read_cell(v) for name, v in raw.items() if name not in bad}
    word = row.get("treatment")
    if (treatment := cells.treatment(word)) is not None:
        row["treatment"] = treatment.value
    for name in DATE_FIELDS:
        if name in row:
            row[name] = cells.read_date(row[name], checked.date_format)
    note = f"treatment given as '{word}'" if treatment is not None and word != treatment.value else None
    named = row.pop("reference", None)
    try:
        fields = _to_fields(row)
        if named is not None:
            _check_named(checked, row_no, str(named), fields, known, who, note)
        else:
            _check_new(checked, row_no, fields, register, who, note)
    except ValidationError as exc:
        for e in exc.errors():
            _report(checked, row_no, raw, bad, _column(e["loc"]), e["msg"])
    except DomainError as exc:
        for problem in exc.errors or [{"loc": (), "message": exc.detail}]:
            column = _column(problem["loc"])
            _report(checked, row_no, raw, bad, column, problem["message"], problem.get("expected"))


def _report(
    checked: CheckedFile, row_no: int, raw: dict[str, Any], bad: dict[str, str], column: str | None, message: str,
    expected: str | None = None,
) -> None:  # fmt: skip
    """A row's problem, unless a bad character in the cell, or the header (a required column missing from a file
    of new risks only), has said it already."""
    if column in bad or (column in checked.header.missing and not checked.header.has("reference")):
        return
    checked.problem(row_no, column, message, raw.get(column or ""), expected or _expected(checked, column))


def _check_named(
    checked: CheckedFile, row_no: int, reference: str, fields: dict[str, Any], known: dict[int, Risk],
    who: Principal, note: str | None,
) -> None:  # fmt: skip
    """A row naming a risk: its changes to that risk, checked."""
    try:
        risk = known.get(service.parse_risk_ref(reference))
    except NotFound as exc:
        message = "not a risk reference (like R-0042 or 42)"
        raise Unprocessable(exc.detail, errors=[field_error(("reference",), message)]) from exc
    if risk is None:
        raise matching.unknown_reference(reference)
    if (earlier := checked.named.setdefault(risk.id, row_no)) != row_no:
        raise Unprocessable(
            f"Row {earlier} changes {risk.reference} too.",
            errors=[field_error(("reference",), f"row {earlier} changes {risk.reference} too; one row a risk")],
        )
    rationale = f"Reassessed by the import of '{checked.filename[:200]}', row {row_no}" + (f"; {note}" if note else "")
    update = matching.check_update(checked.spec, risk, fields, who, row_no, rationale, note)
    if update is None:
        checked.unchanged.append(risk.reference)
        return
    checked.changing.append(risk.reference)
    if checked.keep and not checked.error_count:
        checked.updates.append(update)


def _check_new(
    checked: CheckedFile, row_no: int, fields: dict[str, Any], register: Register, who: Principal, note: str | None
) -> None:
    """A row without a reference: a new risk as POST /risks checks it, unless it probably is one already."""
    data = RiskCreate.model_validate({**fields, "rationale": "Initial assessment" + (f" ({note})" if note else "")})
    key = matching.duplicate_key(data.title, data.owner)
    in_register, in_file = register.open_risks.get(key, []), checked.new_rows.get(key)
    if in_register or in_file is not None:
        of = ", ".join(reference(i) for i in in_register) if in_register else f"row {in_file}"
        action = checked.on_duplicate
        if action == "skip":
            checked.skipped.append(Skipped(row=row_no, duplicate_of=of))
            return
        if action == "update" and len(in_register) == 1:
            risk = register.risks(in_register)[in_register[0]]
            _check_named(checked, row_no, risk.reference, fields, {risk.id: risk}, who, note)
            return
        if action != "create":
            raise _duplicate(of, action, len(in_register))
    checked.new_rows.setdefault(key, row_no)
    new = service.check_new_risk(checked.spec, data, who, loc=())
    if checked.keep and not checked.error_count:
        checked.risks.append(new)


def _duplicate(of: str, on_duplicate: OnDuplicate, matches: int) -> Unprocessable:
    """A probable duplicate the on_duplicate option does not settle."""
    why, expected = "", "a risk not yet in the register or the file, or on_duplicate=skip, create or update"
    if on_duplicate == "update":
        why = "; it matches several open risks" if matches > 1 else "; on_duplicate=update updates risks, not rows"
        expected = "one open risk of that title and owner to update, or on_duplicate=skip or create"
    message = f"probably a duplicate of {of}: the same title and owner{why}"
    return Unprocessable(f"Probably a duplicate of {of}.", errors=[field_error(("title",), message, expected=expected)])


def _expected(checked: CheckedFile, column: str | None) -> str | None:
    spec = checked.spec
    match column:
        case "reference":
            return "the reference of a risk in the register (like R-0042), or blank for a new risk"
        case "title" | "owner":
            return "text of 1 to 200 characters"
        case "category":
            return "text of 1 to 100 characters"
        case "description":
            return "text of up to 20,000 characters"
        case "inherent_likelihood" | "residual_likelihood":
            return f"a whole number from 1 to {len(spec.likelihood)}"
        case "inherent_impact" | "residual_impact":
            return f"a whole number from 1 to {len(spec.impact)}"
        case "target_likelihood":
            return f"with target_impact: a whole number from 1 to {len(spec.likelihood)}, not above the current rating"
        case "target_impact":
            return f"with target_likelihood: a whole number from 1 to {len(spec.impact)}, not above the current rating"
        case "type":
            return "threat or opportunity"
        case "statement_cause" | "statement_event" | "statement_consequence":
            return "text of up to 2,000 characters"
        case "source":
            return "text of up to 200 characters"
        case "objectives":
            return "objectives or services separated by ; (at most 20, each up to 200 characters)"
        case "treatment":
            return cells.EXPECTED_TREATMENT
        case "tags":
            return "words separated by ; or , (at most 50, each up to 50 characters)"
        case "acceptance" | "acceptance_approver":
            return "with treatment accept: an approver and a future expiry date; otherwise neither"
        case "acceptance_expires_at" | "next_review_at" | "target_date":
            return cells.EXPECTED_DATE[checked.date_format or "iso"] + ", or a date cell"
    return None


# Control characters but tab, LF and CR; and the lone surrogates by which undecodable CSV bytes arrive.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _character_problem(value: Any) -> str | None:
    found = _FORBIDDEN.search(value) if isinstance(value, str) else None
    if found is None:
        return None
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"holds the byte 0x{code - 0xDC00:02X}, no character in the file's encoding; save the file as UTF-8"
    return f"contains the control character U+{code:04X}; only tab, line feed and carriage return are allowed"


def _shown(value: Any) -> str | None:
    """A cell as the answer shows it (blank: null), bytes no character of the encoding stands for as \\x81."""
    if read_cell(value) is None:
        return None
    return str(value)[:200].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _column(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = tuple(str(p) for p in loc)
    if not parts:
        return None
    if len(parts) > 1 and (parts[0], parts[1]) in _NESTED:
        return _NESTED[(parts[0], parts[1])]
    return _FIELD_COLUMN.get(parts[0], parts[0])


def _to_fields(cells: dict[str, Any]) -> dict[str, Any]:
    def rating(prefix: str) -> dict[str, Any] | None:
        likelihood, impact = _whole(cells.get(f"{prefix}_likelihood")), _whole(cells.get(f"{prefix}_impact"))
        return None if likelihood is None and impact is None else {"likelihood": likelihood, "impact": impact}

    fields: dict[str, Any] = {
        k: v for k, v in cells.items() if k in ("title", "description", "category", "owner", "source") and v is not None
    }
    fields |= {field: cells[column] for column, field in STATEMENT.items() if cells.get(column) is not None}
    if cells.get("type") is not None:
        fields["type"] = str(cells["type"]).strip().lower()
    if cells.get("objectives") is not None:
        fields["objectives"] = [o.strip() for o in str(cells["objectives"]).split(";") if o.strip()]
    fields["inherent"] = rating("inherent") or {}
    if (residual := rating("residual")) is not None:
        fields["residual"] = residual
    if (target := rating("target")) is not None or cells.get("target_date") is not None:
        when = cells.get("target_date")
        fields["target"] = {**(target or {}), "date": when.date() if isinstance(when, datetime) else when}
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


def read_cell(value: Any) -> Any:
    """Blank is absent; text the service's export defused against formulas is as it was; spreadsheet times carry
    no zone and are read as UTC; whole floats are integers.

    Dates alone (2027-03-31, or a date cell) stay dates: what a date means depends on the column."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return cells.undo_neutralise(value.strip())
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
