"""The register's commands: looking a risk up for a change, creating, editing, assessing, closing and reopening
risks, their controls, and moving the register onto a new matrix. Callers commit."""

import re
from collections.abc import Sequence
from typing import Any, Literal, cast

from sqlalchemy.orm import QueryableAttribute, joinedload
from sqlmodel import Session

from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import get_row
from riskops.errors import Conflict, InvalidTransition, NotFound, PreconditionFailed, stale
from riskops.events import service as events
from riskops.risks import bulk, history, scoring
from riskops.risks.acceptances import records as acceptances
from riskops.risks.appetite import service as appetite
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec, RiskMatrix
from riskops.risks.models import (
    DEFAULT_TREATMENT,
    TREATMENTS,
    AssessmentCreate,
    AssessmentKind,
    Risk,
    RiskAssessment,
    RiskCreate,
    RiskStatus,
    RiskTag,
    RiskUpdate,
    StatusChange,
    reference,
)
from riskops.risks.ratings import Rating

# ---- lookup and concurrency ----

_REFERENCE = re.compile(r"^(?:R-)?0*(\d{1,12})$", re.IGNORECASE)


def parse_risk_ref(ref: str) -> int:
    """Accept a numeric id or a human reference such as R-0042."""
    match = _REFERENCE.match(ref.strip())
    if match is None:
        raise NotFound(f"'{ref}' is not a risk id or reference (like 42 or R-0042).")
    return int(match.group(1))


def get_risk(session: Session, risk_id: int, *, for_update: bool = False) -> Risk:
    # One joined query for a plain read; a locking read cannot outer-join (PostgreSQL refuses FOR UPDATE there).
    # SQLModel types a relationship as its value; on the class it is the mapped attribute a loader names.
    joined: tuple[object, ...] = () if for_update else (Risk.tag_rows, Risk.controls)
    options = [joinedload(cast(QueryableAttribute[Any], relationship)) for relationship in joined]
    return get_row(session, Risk, risk_id, "Risk", with_for_update=for_update, options=options)


def get_for_change(session: Session, ref: str, if_match: str | None) -> Risk:
    """The risk, locked for this transaction, provided it is still the version the caller read."""
    risk = get_risk(session, parse_risk_ref(ref), for_update=True)
    check_if_match(risk, if_match)
    return risk


def etag(risk: Risk) -> str:
    return etag_of(risk.version)


def etag_of(version: int) -> str:
    """A risk's ETag depends on its version alone, so the read model makes it without the row."""
    return f'"{version}"'


def check_if_match(risk: Risk, if_match: str | None) -> None:
    """Optimistic concurrency: a write that names an older version is refused, not merged."""
    if stale(if_match, etag(risk)):
        raise PreconditionFailed(
            f"Risk {risk.reference} has changed since you read it (now version {risk.version}); "
            "read it again and reapply your change.",
            current_version=risk.version,
        )


def touch(session: Session, risk: Risk) -> None:
    risk.updated_at = utcnow()
    risk.version += 1
    session.add(risk)


def _set_tags(risk: Risk, tags: list[str]) -> None:
    risk.tag_rows = [RiskTag(risk_id=risk.id, tag=t) for t in tags]  # id may be unset yet


def _new_assessment(risk: Risk, kind: AssessmentKind, rationale: str, who: Principal) -> RiskAssessment:
    """The risk's ratings as they now stand, recorded as one assessment."""
    return RiskAssessment(
        risk_id=risk.id, kind=kind, matrix_version=risk.matrix_version, rationale=rationale, assessed_by=who.name,
        assessed_at=utcnow(), **{name: getattr(risk, name) for name in scoring.RATING_COLUMNS},
    )  # fmt: skip


# ---- commands ----


def create_risk(
    session: Session, data: RiskCreate, who: Principal, settings: Settings, *, loc: scoring.Loc = ("body",)
) -> Risk:
    """add_risk, and the risk it wrote."""
    return get_risk(session, add_risk(session, data, who, settings, loc=loc))


def add_risk(
    session: Session, data: RiskCreate, who: Principal, settings: Settings, *, loc: scoring.Loc = ("body",)
) -> int:
    """A new risk scored on the current matrix, with its tags, initial assessment, history entry, risk.created
    event and deliveries, and notices: as an import writes each row, in one insert per table. Its id."""
    matrix = matrices.current(session)
    spec = matrix.parsed()
    [risk_id] = bulk.insert_new(session, matrix.version, spec, [check_new_risk(spec, data, who, loc)], who, settings)
    return risk_id


def check_new_risk(spec: MatrixSpec, data: RiskCreate, who: Principal, loc: scoring.Loc) -> bulk.NewRisk:
    """Every check of creating a risk, without a session: the scales of `spec`, and the acceptance."""
    inherent = scoring.score(spec, data.inherent, (*loc, "inherent"))
    residual = scoring.score(spec, data.residual, (*loc, "residual")) if data.residual else None
    scoring.check_treatment(data.type, data.treatment, loc)
    target = scoring.target_of(spec, data.target, data.type, (residual or inherent).score, loc) if data.target else None
    approver, expires_at = acceptances.inline_of(data.treatment, (None, None), data.acceptance, who, loc)
    return bulk.NewRisk(
        title=data.title, description=data.description, type=data.type, cause=data.cause, event=data.event,
        consequence=data.consequence, source=data.source, objectives=tuple(data.objectives),
        category=data.category, owner=data.owner,
        treatment=data.treatment, tags=tuple(data.tags), rationale=data.rationale,
        inherent_likelihood=inherent.likelihood, inherent_impact=inherent.impact, inherent_score=inherent.score,
        inherent_level=inherent.level, inherent_impacts=inherent.impacts,
        residual_likelihood=residual.likelihood if residual else None,
        residual_impact=residual.impact if residual else None,
        residual_impacts=residual.impacts if residual else None,
        residual_score=residual.score if residual else None, residual_level=residual.level if residual else None,
        target_likelihood=target.likelihood if target else None, target_impact=target.impact if target else None,
        target_score=target.score if target else None, target_level=target.level if target else None,
        target_date=data.target.date if data.target and target else None,
        acceptance_approver=approver, acceptance_expires_at=expires_at, next_review_at=data.next_review_at,
    )  # fmt: skip


def create_checked(
    session: Session, matrix_version: int, spec: MatrixSpec, risks: Sequence[bulk.NewRisk], who: Principal,
    settings: Settings,
) -> list[str]:  # fmt: skip
    """Write risks that check_new_risk passed on `matrix_version`, with all that create_risk writes for each
    (tags, initial assessment, history entry, risk.created event and its deliveries, review and owner notices),
    in a few statements per thousand: an import holds the write lock only this long. Their references, in order.

    The rows were scored before the write transaction began: if another matrix version has been published
    since, nothing is written (409) and the file is to be imported again, to be checked on the new matrix."""
    latest = matrices.current(session).version
    if latest != matrix_version:
        raise Conflict(
            f"A new risk matrix (version {latest}) was published while the file was checked on version "
            f"{matrix_version}; nothing was imported. Import the file again to check it on the new matrix.",
            matrix_version=latest,
        )
    return [reference(risk_id) for risk_id in bulk.insert_new(session, matrix_version, spec, risks, who, settings)]


def require_open(risk: Risk, doing: str) -> None:
    """A closed risk is a record of the past: it changes only by being reopened."""
    if risk.status != RiskStatus.open:
        raise InvalidTransition(f"Risk {risk.reference} is closed; reopen it before {doing}.", allowed=["reopen"])


def update_risk(
    session: Session, risk: Risk, data: RiskUpdate, who: Principal, settings: Settings, *, note: str | None = None
) -> Risk:
    require_open(risk, "editing it")
    before = history.risk_state(risk)
    fields = data.model_fields_set
    for name in ("title", "description", "type", "cause", "event", "consequence", "source", "category", "owner"):
        value = getattr(data, name)
        if name in fields and value is not None:
            setattr(risk, name, value)
    if "objectives" in fields and data.objectives is not None:
        risk.objectives = list(data.objectives)
    if "treatment" in fields and data.treatment is not None:
        risk.treatment = data.treatment
    elif "type" in fields and risk.treatment not in TREATMENTS[risk.type]:
        risk.treatment = DEFAULT_TREATMENT[risk.type]  # a threat's mitigation means nothing for an opportunity
    scoring.check_treatment(risk.type, risk.treatment, ("body",))
    if "tags" in fields and data.tags is not None:
        _set_tags(risk, data.tags)
    spec = matrices.get(session, risk.matrix_version).parsed()
    if "target" in fields:
        target = data.target
        scored = scoring.target_of(spec, target, risk.type, risk.score, ("body",)) if target else None
        scoring.set_target(risk, scored, target.date if target else None)
    if "next_review_at" in fields:
        if data.next_review_at is None:
            risk.next_review_set_by_hand = False
        else:
            risk.next_review_at = data.next_review_at
            risk.next_review_set_by_hand = True
        scoring.schedule_review(risk, spec)
    if "treatment" in fields or "acceptance" in fields:
        acceptances.apply_inline(session, risk, spec, data.acceptance, who, settings, before["treatment"], ("body",))
    appetite.place(risk, spec, appetite.limits_for(session, risk.category, spec))
    if history.risk_state(risk) == before:
        return risk  # nothing changed: no new version, no history entry
    touch(session, risk)
    history.record(session, risk, "updated", who, before, settings, note=note)
    session.flush()
    return risk


def assess_risk(
    session: Session, risk: Risk, data: AssessmentCreate, who: Principal, settings: Settings,
    *, kind: AssessmentKind = AssessmentKind.reassessment, matrix: RiskMatrix | None = None,
) -> RiskAssessment:  # fmt: skip
    """A review with new (or confirmed) scores on the current matrix; it restarts the review clock."""
    require_open(risk, "reassessing it")
    matrix = matrix or matrices.current(session)
    spec = matrix.parsed()
    before = history.risk_state(risk)
    level_before, version_before = risk.level, risk.matrix_version
    # A rating carried over keeps its impacts per dimension on its own matrix; another matrix has other criteria.
    same = risk.matrix_version == matrix.version
    inherent_in = data.inherent or Rating(
        likelihood=risk.inherent_likelihood, impact=risk.inherent_impact,
        impacts=risk.inherent_impacts if same else None,
    )  # fmt: skip
    residual_in = data.residual
    if residual_in is None and risk.residual_likelihood is not None and risk.residual_impact is not None:
        residual_in = Rating(likelihood=risk.residual_likelihood, impact=risk.residual_impact,
                             impacts=risk.residual_impacts if same else None)  # fmt: skip
    inherent = scoring.score(spec, inherent_in, ("body", "inherent"))
    residual = scoring.score(spec, residual_in, ("body", "residual")) if residual_in else None
    scoring.set_ratings(risk, inherent, residual)
    if risk.matrix_version != matrix.version:
        _move_target(risk, spec)
    risk.matrix_version = matrix.version
    appetite.place(risk, spec, appetite.limits_for(session, risk.category, spec))
    if kind != AssessmentKind.rescore:  # a change of method is not a review of the risk
        risk.last_reviewed_at = utcnow()
        risk.next_review_set_by_hand = False  # the review the hand-set date asked for has happened
    scoring.schedule_review(risk, spec)
    touch(session, risk)
    assessment = _new_assessment(risk, kind, data.rationale, who)
    session.add(assessment)
    history.record(
        session,
        risk,
        "rescored" if kind == AssessmentKind.rescore else "assessed",
        who,
        before,
        settings,
        note=data.rationale,
    )
    acceptances.govern(session, risk, spec, who, level_before=level_before, version_before=version_before)
    session.flush()
    return assessment


def _move_target(risk: Risk, spec: MatrixSpec) -> None:
    """Onto another matrix the target keeps its likelihood and impact where the new scales have them (its level is
    the new matrix's); where they do not, it is dropped, to be set again on the new scales (the history shows it)."""
    if risk.target_likelihood is None or risk.target_impact is None:
        return
    fits = risk.target_likelihood <= len(spec.likelihood) and risk.target_impact <= len(spec.impact)
    target = Rating(likelihood=risk.target_likelihood, impact=risk.target_impact) if fits else None
    scored = scoring.score(spec, target, ("target",)) if target else None
    scoring.set_target(risk, scored, risk.target_date)


def mark_materialised(session: Session, risk: Risk, incident: str, who: Principal, settings: Settings) -> None:
    """The risk happened: record it on the risk's history and make it due for reassessment now."""
    before = _materialise(session, risk)
    history.record(session, risk, "materialised", who, before, settings, note=incident)


def mark_all_materialised(
    session: Session, risks: Sequence[Risk], incident: str, who: Principal, settings: Settings, outbox: events.Outbox
) -> None:
    """mark_materialised for the risks one incident links, their events into `outbox`: the rows of each table
    written at once (the risks themselves at the caller's next flush)."""
    changed = [(risk, _materialise(session, risk)) for risk in risks]
    history.record_all(session, changed, "materialised", who, settings, outbox, note=incident)


def _materialise(session: Session, risk: Risk) -> dict[str, Any]:
    """Due for reassessment now; its state before, for the history."""
    before = history.risk_state(risk)
    risk.materialised_at = utcnow()
    _due_now(session, risk)
    return before


def request_reassessment(
    session: Session, risks: Sequence[Risk], reason: str, who: Principal, settings: Settings, *, extra: dict[str, Any]
) -> None:
    """Something other than a person's review says these risks may no longer be rated right (a control found
    ineffective, an acceptance ended, a treatment plan completed): each open one is due for review now, with a
    history entry and a risk.reassessment_requested event carrying `reason` and `extra`. Closed risks stay as
    they are. The risks must be locked by the caller (get_risk(for_update=True))."""
    for risk in risks:
        if risk.status != RiskStatus.open:
            continue
        before = history.risk_state(risk)
        _due_now(session, risk)
        history.record(session, risk, "reassessment_requested", who, before, settings, note=reason, extra=extra)
    session.flush()


def _due_now(session: Session, risk: Risk) -> None:
    """The owner's next review is now (until a review or a date set by hand moves it)."""
    risk.next_review_at = utcnow()
    touch(session, risk)


_TRANSITIONS = {RiskStatus.open: {"close": RiskStatus.closed}, RiskStatus.closed: {"reopen": RiskStatus.open}}


def change_status(
    session: Session, risk: Risk, action: Literal["close", "reopen"], data: StatusChange, who: Principal,
    settings: Settings,
) -> Risk:  # fmt: skip
    allowed = _TRANSITIONS[risk.status]
    if action not in allowed:
        raise InvalidTransition(
            f"Risk {risk.reference} is {risk.status}; it cannot {action}. Allowed: {', '.join(allowed)}.",
            allowed=sorted(allowed),
        )
    before = history.risk_state(risk)
    risk.status = allowed[action]
    if action == "close":
        risk.closed_at, risk.closure_reason = utcnow(), data.reason
    else:
        risk.closed_at, risk.closure_reason = None, None
        risk.last_reviewed_at = utcnow()  # reopening is a review; restart the clock
        risk.next_review_set_by_hand = False
        scoring.schedule_review(risk, matrices.get(session, risk.matrix_version).parsed())
    touch(session, risk)
    history.record(
        session, risk, "closed" if action == "close" else "reopened", who, before, settings, note=data.reason
    )
    session.flush()
    return risk
