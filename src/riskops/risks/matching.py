"""An imported row against the register: the existing risk its reference names (changed as PATCH and a recorded
reassessment change it, through the same service functions), or a probable duplicate of an open risk."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.config import Settings
from riskops.db import Database
from riskops.errors import Conflict, InvalidTransition, Unprocessable, field_error
from riskops.risks import scoring, service
from riskops.risks.acceptances import records as acceptances
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import AcceptanceIn, AssessmentCreate, Risk, RiskStatus, RiskUpdate
from riskops.risks.ratings import Rating, TargetRating

OnDuplicate = Literal["error", "skip", "create", "update"]
DuplicateKey = tuple[str, str]

_EDITABLE = ("title", "description", "type", "cause", "event", "consequence", "source", "objectives", "category",
             "owner", "treatment")  # fmt: skip


def duplicate_key(title: str, owner: str) -> DuplicateKey:
    """Two risks are probably one when their title and owner match, whatever the case and surrounding spaces."""
    return title.strip().casefold(), owner.strip().casefold()


class Register:
    """What a file is checked against: the open risks by title and owner, and risks by id, read in short read
    transactions (none is held while the file is checked)."""

    def __init__(self, db: Database):
        self.db = db
        self.open_risks: dict[DuplicateKey, list[int]] = {}
        with db.read() as session:
            found = session.exec(
                select(Risk.id, Risk.title, Risk.owner).where(Risk.status == RiskStatus.open).order_by(col(Risk.id))
            )
            for risk_id, title, owner in found:
                self.open_risks.setdefault(duplicate_key(title, owner), []).append(risk_id)

    def risks(self, ids: Iterable[int]) -> dict[int, Risk]:
        """The risks of these ids that exist, with their tags (detached: read, never written)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        with self.db.read() as session:
            return {risk.id: risk for risk in session.exec(select(Risk).where(col(Risk.id).in_(wanted)))}


@dataclass(frozen=True, slots=True)
class Update:
    """A change an imported row makes to an existing risk, checked against the version it was read at."""

    risk_id: int
    reference: str
    version: int
    row: int
    edit: RiskUpdate | None
    assessment: AssessmentCreate | None
    note: str | None  # what the file said that the recorded change alone would not show


def check_update(
    spec: MatrixSpec, risk: Risk, fields: dict[str, Any], who: Principal, row: int, rationale: str,
    note: str | None,
) -> Update | None:  # fmt: skip
    """The change a row asks of `risk` (only the cells that differ from it), checked as PATCH and POST
    /assessments check it; None when the row changes nothing. Raises what those would answer."""
    edit = {name: fields[name] for name in _EDITABLE if name in fields and fields[name] != getattr(risk, name)}
    if "tags" in fields:
        tags = RiskUpdate.model_validate({"tags": fields["tags"]}).tags
        if tags != risk.tags:
            edit["tags"] = tags
    if (acceptance := fields.get("acceptance")) is not None:
        asked = AcceptanceIn.model_validate(acceptance)
        if asked.approver != risk.acceptance_approver or not _same(asked.expires_at, risk.acceptance_expires_at):
            edit["acceptance"] = acceptance
    if (review := fields.get("next_review_at")) is not None and not _same(_moment(review), risk.next_review_at):
        edit["next_review_at"] = review
    if (target := fields.get("target")) is not None:
        held = {"likelihood": risk.target_likelihood, "impact": risk.target_impact, "date": risk.target_date}
        wanted = {**held, **{k: v for k, v in target.items() if v is not None}}
        if TargetRating.model_validate(wanted).model_dump() != held:
            edit["target"] = wanted
    changes = RiskUpdate.model_validate(edit) if edit else None
    inherent = _rating(fields.get("inherent"), risk.inherent_likelihood, risk.inherent_impact)
    residual = _rating(fields.get("residual"), risk.residual_likelihood, risk.residual_impact)
    assessment = None
    if (inherent, residual) != (None, None):
        rated = inherent or Rating(likelihood=risk.inherent_likelihood, impact=risk.inherent_impact)
        scoring.score(spec, rated, ("inherent",))  # the scales, as the reassessment will check them
        if residual:
            scoring.score(spec, residual, ("residual",))
        assessment = AssessmentCreate(inherent=inherent, residual=residual, rationale=rationale)
    if changes is None and assessment is None:
        return None
    if risk.status != RiskStatus.open:
        raise InvalidTransition(
            f"Risk {risk.reference} is closed; reopen it before changing it.",
            errors=[field_error(("reference",), f"{risk.reference} is closed; reopen it before changing it")],
        )
    if changes is not None and ("treatment" in edit or "acceptance" in edit):
        held_now = (risk.acceptance_approver, risk.acceptance_expires_at)
        treatment = changes.treatment or risk.treatment
        acceptances.inline_of(treatment, held_now, changes.acceptance, who, ())
    # A reassessment's rationale carries the note into the history already.
    return Update(risk.id, risk.reference, risk.version, row, changes, assessment, note if assessment is None else None)


def _rating(given: dict[str, Any] | None, likelihood: int | None, impact: int | None) -> Rating | None:
    """The rating a row gives (a missing half taken from the risk); None when it gives none or the same."""
    if given is None:
        return None
    halves = {"likelihood": likelihood, "impact": impact}
    rating = Rating.model_validate(
        {axis: held if given.get(axis) is None else given[axis] for axis, held in halves.items()}
    )
    return None if (rating.likelihood, rating.impact) == (likelihood, impact) else rating


def _same(moment: datetime | None, held: datetime | None) -> bool:
    """A spreadsheet keeps a time to the millisecond at most (Excel makes 23:59:59.999999 the next midnight)."""
    return moment is not None and held is not None and abs(moment - held) < timedelta(seconds=1)


def _moment(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else RiskUpdate.model_validate({"next_review_at": value}).next_review_at


def apply(session: Session, updates: Sequence[Update], who: Principal, settings: Settings) -> list[str]:
    """Make the checked changes: a reassessment as POST /risks/{ref}/assessments makes it, then an edit as PATCH
    does, each recorded in the risk's history. A risk changed since the file was checked refuses the lot (409)."""
    for update in updates:
        risk = service.get_risk(session, update.risk_id, for_update=True)
        if risk.version != update.version:
            raise Conflict(
                f"Risk {update.reference} (row {update.row}) changed while the file was checked; nothing was "
                "imported. Import the file again to check it against the risk as it is now.",
                errors=[{"row": update.row, "column": "reference", "message": "changed while the file was checked"}],
            )
        if update.assessment is not None:
            service.assess_risk(session, risk, update.assessment, who, settings)
        if update.edit is not None:
            service.update_risk(session, risk, update.edit, who, settings, note=update.note)
        elif update.note is not None:
            audit.service.record(
                session, entity_type="risk", entity_id=risk.id, action="imported", actor=who.name, changes={},
                note=update.note,
            )  # fmt: skip
    return [update.reference for update in updates]


def unknown_reference(reference: str) -> Unprocessable:
    return Unprocessable(
        f"No risk {reference} in the register.",
        errors=[field_error(("reference",), f"no risk {reference} in the register")],
    )
