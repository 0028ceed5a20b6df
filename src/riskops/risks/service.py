"""The rules of the register: scoring, review cadence, acceptance, history. Callers commit."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, exists, func, insert, or_
from sqlalchemy.orm import joinedload
from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.audit.models import AuditEntry
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import get_row, storable, table_of
from riskops.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    Unprocessable,
    field_error,
)
from riskops.events import service as events
from riskops.events.models import Event
from riskops.notices import service as scheduler
from riskops.pagination import decode_cursor, decode_id_cursor, encode_cursor, id_page, malformed_cursor
from riskops.risks import scheduled
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec, RescoreResult, RiskMatrix
from riskops.risks.models import (
    Acceptance,
    AcceptanceIn,
    AssessmentCreate,
    AssessmentKind,
    AssessmentPublic,
    ControlCreate,
    ControlPublic,
    ControlUpdate,
    Rating,
    Risk,
    RiskAssessment,
    RiskControl,
    RiskCreate,
    RiskPublic,
    RiskStatus,
    RiskTag,
    RiskUpdate,
    ScoredRating,
    StatusChange,
    Treatment,
    reference,
)

Loc = tuple[str | int, ...]

# ---- presenting ----


def present(risk: Risk) -> RiskPublic:
    now = utcnow()
    acceptance = None
    if risk.acceptance_approver is not None and risk.acceptance_expires_at is not None:
        acceptance = Acceptance(
            approver=risk.acceptance_approver,
            expires_at=risk.acceptance_expires_at,
            expired=risk.acceptance_expires_at <= now,
        )
    return RiskPublic(
        id=risk.id,
        reference=risk.reference,
        title=risk.title,
        description=risk.description,
        category=risk.category,
        owner=risk.owner,
        status=risk.status,
        treatment=risk.treatment,
        tags=risk.tags,
        matrix_version=risk.matrix_version,
        inherent=_rating_of(risk, "inherent"),
        residual=_rating_of(risk, "residual"),
        score=risk.score,
        level=risk.level,
        acceptance=acceptance,
        controls=[ControlPublic.model_validate(c) for c in risk.controls],
        created_at=risk.created_at,
        updated_at=risk.updated_at,
        last_reviewed_at=risk.last_reviewed_at,
        next_review_at=risk.next_review_at,
        next_review_set_by_hand=risk.next_review_set_by_hand,
        overdue=is_overdue(risk, now),
        closed_at=risk.closed_at,
        closure_reason=risk.closure_reason,
        materialised_at=risk.materialised_at,
        version=risk.version,
    )


def present_assessment(a: RiskAssessment) -> AssessmentPublic:
    return AssessmentPublic(
        id=a.id,
        risk_id=a.risk_id,
        kind=a.kind,
        matrix_version=a.matrix_version,
        inherent=_rating_of(a, "inherent"),
        residual=_rating_of(a, "residual"),
        rationale=a.rationale,
        assessed_by=a.assessed_by,
        assessed_at=a.assessed_at,
    )


def _rating_of(row: Risk | RiskAssessment, which: Literal["inherent", "residual"]) -> ScoredRating | None:
    likelihood = getattr(row, f"{which}_likelihood")
    if likelihood is None:
        return None
    return ScoredRating(
        likelihood=likelihood,
        impact=getattr(row, f"{which}_impact"),
        score=getattr(row, f"{which}_score"),
        level=getattr(row, f"{which}_level"),
    )


def is_overdue(risk: Risk, now: datetime) -> bool:
    return risk.status == RiskStatus.open and risk.next_review_at < now


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
    options = [] if for_update else [joinedload(Risk.tag_rows), joinedload(Risk.controls)]  # type: ignore[arg-type]
    return get_row(session, Risk, risk_id, "Risk", with_for_update=for_update, options=options)


def get_for_change(session: Session, ref: str, if_match: str | None) -> Risk:
    """The risk, locked for this transaction, provided it is still the version the caller read."""
    risk = get_risk(session, parse_risk_ref(ref), for_update=True)
    check_if_match(risk, if_match)
    return risk


def etag(risk: Risk) -> str:
    return f'"{risk.version}"'


def check_if_match(risk: Risk, if_match: str | None) -> None:
    """Optimistic concurrency: a write that names an older version is refused, not merged."""
    if if_match is None or if_match.strip() == "*":
        return
    wanted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if etag(risk) not in wanted:
        raise PreconditionFailed(
            f"Risk {risk.reference} has changed since you read it (now version {risk.version}); "
            "read it again and reapply your change.",
            current_version=risk.version,
        )


# ---- scoring, review cadence, acceptance ----


def score(spec: MatrixSpec, rating: Rating, loc: Loc) -> ScoredRating:
    errors = []
    for axis, scale in (("likelihood", spec.likelihood), ("impact", spec.impact)):
        value = getattr(rating, axis)
        if not 1 <= value <= len(scale):
            errors.append(field_error((*loc, axis), f"must be between 1 and {len(scale)} on the '{spec.name}' matrix"))
    if errors:
        raise Unprocessable(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
    return ScoredRating(
        likelihood=rating.likelihood,
        impact=rating.impact,
        score=rating.likelihood * rating.impact,
        level=spec.level_of(rating.likelihood, rating.impact),
    )


def _set_ratings(target: Risk | RiskAssessment, inherent: ScoredRating, residual: ScoredRating | None) -> None:
    for which, rating in (("inherent", inherent), ("residual", residual)):
        for part in ("likelihood", "impact", "score", "level"):
            setattr(target, f"{which}_{part}", getattr(rating, part) if rating else None)
    if isinstance(target, Risk):
        current = residual or inherent
        target.score, target.level = current.score, current.level


def schedule_review(risk: Risk, spec: MatrixSpec) -> None:
    """next_review_at follows the last review and the current level, unless a person set it by hand."""
    if not risk.next_review_set_by_hand:
        risk.next_review_at = risk.last_reviewed_at + spec.review_interval(risk.level)


def may_hold_acceptance(spec: MatrixSpec, level: str, who: Principal) -> bool:
    """Anyone may accept a risk within the appetite; above it, only an admin."""
    return not spec.above_appetite(level) or who.may(Role.admin)


def _check_acceptance(risk: Risk, spec: MatrixSpec, acceptance: AcceptanceIn | None, who: Principal, loc: Loc) -> None:
    """Accepting needs an approver and a future expiry; above the appetite it needs an admin."""
    held = (risk.acceptance_approver, risk.acceptance_expires_at)
    granted = _acceptance_of(risk.treatment, risk.level, held, spec, acceptance, who, loc)
    if granted != held:
        risk.acceptance_approver, risk.acceptance_expires_at = granted


def _acceptance_of(
    treatment: Treatment, level: str, held: tuple[str | None, datetime | None], spec: MatrixSpec,
    acceptance: AcceptanceIn | None, who: Principal, loc: Loc,
) -> tuple[str | None, datetime | None]:  # fmt: skip
    """The (approver, expiry) a risk of this treatment and level holds, given the acceptance asked for."""
    if treatment != Treatment.accept:
        if acceptance is not None:
            raise Unprocessable(
                "An acceptance applies only to treatment 'accept'.",
                errors=[field_error((*loc, "acceptance"), "only allowed with treatment 'accept'")],
            )
        return None, None
    if acceptance is None:
        if held[0] is not None:
            return held  # an existing acceptance carries over an edit of other fields
        raise Unprocessable(
            "Accepting a risk needs an approver and an expiry date.",
            errors=[field_error((*loc, "acceptance"), "required when treatment is 'accept'")],
        )
    if acceptance.expires_at.tzinfo is None or acceptance.expires_at <= utcnow():
        raise Unprocessable(
            "The acceptance must expire in the future (timezone-aware).",
            errors=[field_error((*loc, "acceptance", "expires_at"), "must be a future, timezone-aware time")],
        )
    if not may_hold_acceptance(spec, level, who):
        raise Forbidden(
            f"Level '{level}' is above the risk appetite ('{spec.appetite}'); only an admin may accept it.",
            errors=[field_error((*loc, "treatment"), "above risk appetite")],
        )
    return acceptance.approver, acceptance.expires_at.astimezone(UTC)


def govern_acceptance(
    session: Session, risk: Risk, spec: MatrixSpec, who: Principal, settings: Settings,
    *, level_before: str, version_before: int,
) -> None:  # fmt: skip
    """After a change of rating: an accepted risk that the change took above the appetite (to a level higher
    than before, or onto another matrix) keeps its acceptance only when an admin made the change, as only an
    admin may accept it there. Otherwise the acceptance is voided, recorded and announced in the same unit."""
    if risk.treatment != Treatment.accept or may_hold_acceptance(spec, risk.level, who):
        return
    if risk.matrix_version == version_before and spec.rank(risk.level) <= spec.rank(level_before):
        return  # no higher than the level the acceptance was given or kept at
    before = _state(risk)
    approver, expires_at = risk.acceptance_approver, risk.acceptance_expires_at
    risk.treatment = Treatment.mitigate
    risk.acceptance_approver = risk.acceptance_expires_at = None
    voided = {
        "old_approver": approver, "old_expires_at": expires_at.isoformat() if expires_at else None,
        "new_level": risk.level, "appetite": spec.appetite,
    }  # fmt: skip
    note = f"Level '{risk.level}' is above the risk appetite ('{spec.appetite}'); only an admin may keep it accepted."
    _record(session, risk, "acceptance_voided", who, before, settings, note=note, extra=voided)


# ---- history ----

_AUDITED = (
    "title", "description", "category", "owner", "status", "treatment", "matrix_version",
    "inherent_likelihood", "inherent_impact", "inherent_score", "inherent_level",
    "residual_likelihood", "residual_impact", "residual_score", "residual_level",
    "acceptance_approver", "acceptance_expires_at", "next_review_at", "next_review_set_by_hand",
    "last_reviewed_at", "closed_at", "closure_reason", "materialised_at", "score", "level",
)  # fmt: skip


def _state(risk: Risk) -> dict[str, Any]:
    return _state_of(_columns(risk), risk.tags)


def _columns(risk: Risk) -> dict[str, Any]:
    return {name: getattr(risk, name) for name in _AUDITED}


def _state_of(columns: Mapping[str, Any], tags: Sequence[str]) -> dict[str, Any]:
    """What the history records of a risk: its audited columns (as stored) and tags, times as ISO text."""
    state: dict[str, Any] = {name: columns[name] for name in _AUDITED}
    state["tags"] = list(tags)
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in state.items()}


def _event_data(risk_id: int, columns: Mapping[str, Any], who: Principal, changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": risk_id, "reference": reference(risk_id), "title": columns["title"], "owner": columns["owner"],
        "category": columns["category"], "status": str(columns["status"]), "score": columns["score"],
        "level": columns["level"], "next_review_at": columns["next_review_at"].isoformat(), "actor": who.name,
        "changes": changes,
    }  # fmt: skip


_EVENT_FOR = {
    "created": "risk.created", "assessed": "risk.assessed", "rescored": "risk.assessed", "closed": "risk.closed",
    "reopened": "risk.reopened", "materialised": "risk.materialised", "acceptance_voided": "risk.acceptance_voided",
}  # fmt: skip


def _record(
    session: Session, risk: Risk, action: str, who: Principal, before: dict[str, Any],
    settings: Settings, *, note: str | None = None, changes: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Every change to a risk: its audit entry, events and re-planned notices, all in the caller's transaction."""
    changes = changes if changes is not None else audit.service.diff(before, _state(risk))
    audit.service.record(
        session, entity_type="risk", entity_id=risk.id, action=action, actor=who.name, changes=changes, note=note
    )
    data = _event_data(risk.id, _columns(risk), who, changes)  # flushed: it has an id
    events.emit(session, _EVENT_FOR.get(action, "risk.updated"), "risk", risk.reference, {**data, **(extra or {})})
    if before and before.get("level") != risk.level:
        events.emit(
            session, "risk.level_changed", "risk", risk.reference,
            {**data, "old_level": before.get("level"), "new_level": risk.level},
        )  # fmt: skip
    scheduled.plan_notices(session, risk, settings)
    if action in ("created", "reopened") or (before and before.get("owner") != risk.owner):
        scheduled.plan_owner_assigned(session, risk)


def _touch(session: Session, risk: Risk) -> None:
    risk.updated_at = utcnow()
    risk.version += 1
    session.add(risk)


def _set_tags(risk: Risk, tags: list[str]) -> None:
    risk.tag_rows = [RiskTag(risk_id=risk.id, tag=t) for t in tags]  # id may be unset yet


def _new_assessment(risk: Risk, kind: AssessmentKind, rationale: str, who: Principal) -> RiskAssessment:
    assessment = RiskAssessment(
        risk_id=risk.id,
        kind=kind, matrix_version=risk.matrix_version, rationale=rationale, assessed_by=who.name,
        assessed_at=utcnow(),
        inherent_likelihood=0, inherent_impact=0, inherent_score=0, inherent_level="",
    )  # fmt: skip
    _set_ratings(assessment, _rating_of(risk, "inherent"), _rating_of(risk, "residual"))  # type: ignore[arg-type]
    return assessment


# ---- commands ----


def create_risk(
    session: Session, data: RiskCreate, who: Principal, settings: Settings, *, loc: Loc = ("body",)
) -> Risk:
    matrix = matrices.current(session)
    spec = matrix.parsed()
    new = check_new_risk(spec, data, who, loc)
    risk = Risk(**_new_columns(new, matrix.version, spec, utcnow()))
    _set_tags(risk, list(new.tags))
    session.add(risk)
    session.flush()
    session.add(_new_assessment(risk, AssessmentKind.initial, new.rationale, who))
    _record(session, risk, "created", who, {}, settings, note=new.rationale)
    session.flush()
    return risk


@dataclass(frozen=True, slots=True)
class NewRisk:
    """A risk checked and scored on one matrix version, not yet written (flat and slotted: an import holds
    tens of thousands of them while it checks a file, before it takes the write lock)."""

    title: str
    description: str
    category: str
    owner: str
    treatment: Treatment
    tags: tuple[str, ...]
    rationale: str
    inherent_likelihood: int
    inherent_impact: int
    inherent_score: int
    inherent_level: str
    residual_likelihood: int | None
    residual_impact: int | None
    residual_score: int | None
    residual_level: str | None
    acceptance_approver: str | None
    acceptance_expires_at: datetime | None
    next_review_at: datetime | None  # set by hand; otherwise it follows from the level when written


def check_new_risk(spec: MatrixSpec, data: RiskCreate, who: Principal, loc: Loc) -> NewRisk:
    """Every check of creating a risk, without a session: the scales of `spec`, and the acceptance."""
    inherent = score(spec, data.inherent, (*loc, "inherent"))
    residual = score(spec, data.residual, (*loc, "residual")) if data.residual else None
    level = (residual or inherent).level
    approver, expires_at = _acceptance_of(data.treatment, level, (None, None), spec, data.acceptance, who, loc)
    return NewRisk(
        title=data.title, description=data.description, category=data.category, owner=data.owner,
        treatment=data.treatment, tags=tuple(data.tags), rationale=data.rationale,
        inherent_likelihood=inherent.likelihood, inherent_impact=inherent.impact, inherent_score=inherent.score,
        inherent_level=inherent.level,
        residual_likelihood=residual.likelihood if residual else None,
        residual_impact=residual.impact if residual else None,
        residual_score=residual.score if residual else None, residual_level=residual.level if residual else None,
        acceptance_approver=approver, acceptance_expires_at=expires_at, next_review_at=data.next_review_at,
    )  # fmt: skip


def _new_columns(new: NewRisk, matrix_version: int, spec: MatrixSpec, now: datetime) -> dict[str, Any]:
    """Every column of a new risk, as create_risk and create_checked write it."""
    rated = "residual" if new.residual_level is not None else "inherent"
    level: str = getattr(new, f"{rated}_level")
    return {
        "title": new.title, "description": new.description, "category": new.category, "owner": new.owner,
        "status": RiskStatus.open, "treatment": new.treatment, "matrix_version": matrix_version,
        "inherent_likelihood": new.inherent_likelihood, "inherent_impact": new.inherent_impact,
        "inherent_score": new.inherent_score, "inherent_level": new.inherent_level,
        "residual_likelihood": new.residual_likelihood, "residual_impact": new.residual_impact,
        "residual_score": new.residual_score, "residual_level": new.residual_level,
        "score": getattr(new, f"{rated}_score"), "level": level,
        "acceptance_approver": new.acceptance_approver, "acceptance_expires_at": new.acceptance_expires_at,
        "created_at": now, "updated_at": now, "last_reviewed_at": now,
        # schedule_review's rule: the level's interval from the last review (now), unless set by hand
        "next_review_at": new.next_review_at or now + spec.review_interval(level),
        "next_review_set_by_hand": new.next_review_at is not None,
        "closed_at": None, "closure_reason": None, "materialised_at": None, "version": 1,
    }  # fmt: skip


# A batch of an import: large enough for few statements, small enough that its rows stay a few MB.
_BATCH = 500


def create_checked(
    session: Session, matrix_version: int, spec: MatrixSpec, risks: Sequence[NewRisk], who: Principal,
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
    references: list[str] = []
    for start in range(0, len(risks), _BATCH):
        references += _insert_batch(session, matrix_version, spec, risks[start : start + _BATCH], who, settings)
    return references


def _insert_batch(
    session: Session, matrix_version: int, spec: MatrixSpec, batch: Sequence[NewRisk], who: Principal,
    settings: Settings,
) -> list[str]:  # fmt: skip
    now = utcnow()
    rows = [_new_columns(new, matrix_version, spec, now) for new in batch]
    ids = _insert_numbered(session, Risk, rows)
    tags = [{"risk_id": risk_id, "tag": tag} for risk_id, new in zip(ids, batch, strict=True) for tag in new.tags]
    if tags:
        session.execute(insert(table_of(RiskTag)), tags)
    assessments: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    events_out: list[dict[str, Any]] = []
    notices: list[dict[str, Any]] = []
    for risk_id, new, columns in zip(ids, batch, rows, strict=True):
        assessments.append({
            "risk_id": risk_id, "kind": AssessmentKind.initial, "matrix_version": matrix_version,
            "rationale": new.rationale, "assessed_by": who.name, "assessed_at": now,
            **{name: columns[name] for name in _RATING_COLUMNS},
        })  # fmt: skip
        changes = audit.service.diff({}, _state_of(columns, new.tags))
        entries.append({
            "entity_type": "risk", "entity_id": str(risk_id), "action": "created", "actor": who.name, "at": now,
            "changes": changes, "note": new.rationale,
        })  # fmt: skip
        events_out.append({
            "type": _EVENT_FOR["created"], "subject_type": "risk", "subject_id": reference(risk_id),
            "occurred_at": now, "data": _event_data(risk_id, columns, who, changes),
        })  # fmt: skip
        notices += _creation_notices(risk_id, columns, settings)
    session.execute(insert(table_of(RiskAssessment)), assessments)
    session.execute(insert(table_of(AuditEntry)), entries)
    ids_out = _insert_numbered(session, Event, events_out)
    events.fan_out_to(session, [Event(id=i, **event) for i, event in zip(ids_out, events_out, strict=True)])
    scheduler.plan(session, notices)
    session.flush()  # the deliveries, so that the session lets go of this batch
    return [reference(risk_id) for risk_id in ids]


def _insert_numbered(session: Session, model: type[Risk] | type[Event], rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows in a few statements and give their new ids, in the order of `rows`."""
    table = table_of(model)
    if session.get_bind().dialect.name != "sqlite":
        numbered = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(session.execute(numbered, rows).scalars())
    # SQLite cannot say which returned id is which row's (SQLAlchemy would insert them one by one); but this
    # transaction holds the only write lock (BEGIN IMMEDIATE), so the ids are those SQLite would give: the next.
    first = (session.scalar(select(func.max(table.c.id))) or 0) + 1
    ids = list(range(first, first + len(rows)))
    session.execute(insert(table), [{**row, "id": row_id} for row, row_id in zip(rows, ids, strict=True)])
    return ids


_RATING_COLUMNS = tuple(
    f"{which}_{part}" for which in ("inherent", "residual") for part in ("likelihood", "impact", "score", "level")
)


def _creation_notices(risk_id: int, columns: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """What plan_notices and plan_owner_assigned plan for a new open risk, as rows for one statement a batch."""
    return [
        *scheduled.date_notices(
            risk_id, columns["next_review_at"], columns["treatment"], columns["acceptance_expires_at"], settings
        ),
        scheduled.owner_assigned_notice(risk_id, columns["owner"], columns["version"], columns["created_at"]),
    ]


def _require_open(risk: Risk, doing: str) -> None:
    """A closed risk is a record of the past: it changes only by being reopened."""
    if risk.status != RiskStatus.open:
        raise InvalidTransition(f"Risk {risk.reference} is closed; reopen it before {doing}.", allowed=["reopen"])


def update_risk(session: Session, risk: Risk, data: RiskUpdate, who: Principal, settings: Settings) -> Risk:
    _require_open(risk, "editing it")
    before = _state(risk)
    fields = data.model_fields_set
    for name in ("title", "description", "category", "owner", "treatment"):
        value = getattr(data, name)
        if name in fields and value is not None:
            setattr(risk, name, value)
    if "tags" in fields and data.tags is not None:
        _set_tags(risk, data.tags)
    spec = matrices.get(session, risk.matrix_version).parsed()
    if "next_review_at" in fields:
        if data.next_review_at is None:
            risk.next_review_set_by_hand = False
        else:
            risk.next_review_at = data.next_review_at
            risk.next_review_set_by_hand = True
        schedule_review(risk, spec)
    if "treatment" in fields or "acceptance" in fields:
        _check_acceptance(risk, spec, data.acceptance, who, ("body",))
    if _state(risk) == before:
        return risk  # nothing changed: no new version, no history entry
    _touch(session, risk)
    _record(session, risk, "updated", who, before, settings)
    session.flush()
    return risk


def assess_risk(
    session: Session, risk: Risk, data: AssessmentCreate, who: Principal, settings: Settings,
    *, kind: AssessmentKind = AssessmentKind.reassessment, matrix: RiskMatrix | None = None,
) -> RiskAssessment:  # fmt: skip
    """A review with new (or confirmed) scores on the current matrix; it restarts the review clock."""
    _require_open(risk, "reassessing it")
    matrix = matrix or matrices.current(session)
    spec = matrix.parsed()
    before = _state(risk)
    level_before, version_before = risk.level, risk.matrix_version
    inherent_in = data.inherent or Rating(likelihood=risk.inherent_likelihood, impact=risk.inherent_impact)
    residual_in = data.residual
    if residual_in is None and risk.residual_likelihood is not None:
        residual_in = Rating(likelihood=risk.residual_likelihood, impact=risk.residual_impact)
    inherent = score(spec, inherent_in, ("body", "inherent"))
    residual = score(spec, residual_in, ("body", "residual")) if residual_in else None
    _set_ratings(risk, inherent, residual)
    risk.matrix_version = matrix.version
    if kind != AssessmentKind.rescore:  # a change of method is not a review of the risk
        risk.last_reviewed_at = utcnow()
        risk.next_review_set_by_hand = False  # the review the hand-set date asked for has happened
    schedule_review(risk, spec)
    _touch(session, risk)
    assessment = _new_assessment(risk, kind, data.rationale, who)
    session.add(assessment)
    _record(
        session,
        risk,
        "rescored" if kind == AssessmentKind.rescore else "assessed",
        who,
        before,
        settings,
        note=data.rationale,
    )
    govern_acceptance(session, risk, spec, who, settings, level_before=level_before, version_before=version_before)
    session.flush()
    return assessment


def mark_materialised(session: Session, risk: Risk, incident: str, who: Principal, settings: Settings) -> None:
    """The risk happened: record it on the risk's history and make it due for reassessment now."""
    before = _state(risk)
    risk.materialised_at = risk.next_review_at = utcnow()
    _touch(session, risk)
    _record(session, risk, "materialised", who, before, settings, note=incident)


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
    before = _state(risk)
    risk.status = allowed[action]
    if action == "close":
        risk.closed_at, risk.closure_reason = utcnow(), data.reason
    else:
        risk.closed_at, risk.closure_reason = None, None
        risk.last_reviewed_at = utcnow()  # reopening is a review; restart the clock
        risk.next_review_set_by_hand = False
        schedule_review(risk, matrices.get(session, risk.matrix_version).parsed())
    _touch(session, risk)
    _record(session, risk, "closed" if action == "close" else "reopened", who, before, settings, note=data.reason)
    session.flush()
    return risk


def add_control(session: Session, risk: Risk, data: ControlCreate, who: Principal, settings: Settings) -> RiskControl:
    _require_open(risk, "adding a control")
    control = RiskControl(risk_id=risk.id, **data.model_dump())
    session.add(control)
    session.flush()
    _touch(session, risk)
    changes = {f"controls.{control.id}": {"old": None, "new": _control_state(control)}}
    _record(session, risk, "control.added", who, {}, settings, changes=changes)
    session.flush()
    session.refresh(risk, ["controls"])
    return control


def update_control(
    session: Session, risk: Risk, control_id: int, data: ControlUpdate, who: Principal, settings: Settings
) -> RiskControl:
    _require_open(risk, "changing its controls")
    control = session.get(RiskControl, control_id) if storable(control_id) else None
    if control is None or control.risk_id != risk.id:
        raise NotFound(f"Control {control_id} does not exist on risk {risk.reference}.")
    before = _control_state(control)
    for name in data.model_fields_set:
        value = getattr(data, name)
        if value is None and name != "due_date":
            raise Unprocessable(f"{name} cannot be null.", errors=[field_error(("body", name), "cannot be null")])
        setattr(control, name, value)
    after = _control_state(control)
    if after != before:
        control.updated_at = utcnow()
        session.add(control)
        _touch(session, risk)
        changes = {f"controls.{control.id}.{k}": v for k, v in audit.service.diff(before, after).items()}
        _record(session, risk, "control.updated", who, {}, settings, changes=changes)
        session.flush()
    return control


def _control_state(control: RiskControl) -> dict[str, Any]:
    return {
        "title": control.title,
        "owner": control.owner,
        "status": str(control.status),
        "due_date": control.due_date.isoformat() if control.due_date else None,
    }


# ---- queries ----

SortKey = Literal["score", "-score", "next_review_at", "-next_review_at", "updated_at", "-updated_at", "id", "-id"]


@dataclass(frozen=True)
class RiskFilter:
    """Each sequence means any of its values; an empty one does not filter."""

    status: Sequence[str] = ()
    level: Sequence[str] = ()
    treatment: Sequence[str] = ()
    category: Sequence[str] = ()
    owner: Sequence[str] = ()
    tag: Sequence[str] = ()
    overdue: bool | None = None
    q: str | None = None

    def clauses(self, now: datetime) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        for name in ("status", "level", "treatment"):
            if values := getattr(self, name):
                out.append(col(getattr(Risk, name)).in_(sorted(set(values))))
        if self.category:
            out.append(_lower_in(col(Risk.category), [category_key(c) for c in self.category]))
        if self.owner:
            out.append(_lower_in(col(Risk.owner), [scheduled.owner_key(o) for o in self.owner]))
        if self.tag:
            tags = sorted({t.strip().lower() for t in self.tag})
            out.append(exists().where(col(RiskTag.risk_id) == col(Risk.id), col(RiskTag.tag).in_(tags)))
        if self.overdue is not None:
            due = and_(col(Risk.status) == RiskStatus.open, col(Risk.next_review_at) < now)
            out.append(due if self.overdue else ~due)
        if self.q:
            pattern = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            out.append(
                or_(col(Risk.title).ilike(pattern, escape="\\"), col(Risk.description).ilike(pattern, escape="\\"))
            )
        return out


def category_key(category: str) -> str:
    """Categories are matched case-insensitively and without surrounding spaces, like owners."""
    return category.strip().lower()  # SQL's lower(), as the category index is built on both databases


def _lower_in(column: Any, keys: list[str]) -> ColumnElement[bool]:
    """lower(column) against lower-cased keys: the form the lower() expression indexes answer."""
    return func.lower(column).in_(sorted(set(keys)))  # both databases plan IN of one value as =


def _check_filter(session: Session, filters: RiskFilter) -> None:
    """A status, level or treatment that does not exist is a mistake, not an empty list: name the values that do."""
    known = {
        "status": [str(s) for s in RiskStatus],
        "level": matrices.level_names(session) if filters.level else [],
        "treatment": [str(t) for t in Treatment],
    }
    errors = []
    for name, allowed in known.items():
        unknown = [v for v in getattr(filters, name) if v not in allowed]
        if unknown:
            message = f"unknown {name} {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}"
            errors.append(field_error(("query", name), message, allowed=allowed))
    if errors:
        raise Unprocessable(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)


def list_risks(
    session: Session, filters: RiskFilter, *, sort: SortKey = "-score", cursor: str | None = None, limit: int = 50
) -> tuple[list[Risk], str | None]:
    """Keyset pagination on (sort column, id): stable while rows are added or edited elsewhere."""
    _check_filter(session, filters)
    descending = sort.startswith("-")
    name = sort.lstrip("-")
    column = col(getattr(Risk, name))
    query = select(Risk).where(*filters.clauses(utcnow()))
    if cursor is not None:
        values = decode_cursor(cursor)
        if len(values) != 3 or values[0] != sort or not isinstance(values[2], int):
            raise malformed_cursor()
        last_value, last_id = _cursor_value(name, values[1]), values[2]
        if name == "id":
            query = query.where(column < last_id if descending else column > last_id)
        elif descending:
            query = query.where(or_(column < last_value, and_(column == last_value, col(Risk.id) < last_id)))
        else:
            query = query.where(or_(column > last_value, and_(column == last_value, col(Risk.id) > last_id)))
    order = [column.desc(), col(Risk.id).desc()] if descending else [column.asc(), col(Risk.id).asc()]
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        value = getattr(last, name)
        next_cursor = encode_cursor([sort, value.isoformat() if isinstance(value, datetime) else value, last.id])
    return rows, next_cursor


def _cursor_value(name: str, raw: Any) -> Any:
    try:
        if name in ("next_review_at", "updated_at"):
            return datetime.fromisoformat(raw)
        if isinstance(raw, int):
            return raw
    except (TypeError, ValueError):
        pass
    raise malformed_cursor()


def list_assessments(
    session: Session, risk: Risk, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[RiskAssessment], str | None]:
    """Newest first; the last page ends with the assessment the risk was created with."""
    query = select(RiskAssessment).where(RiskAssessment.risk_id == risk.id)
    before_id = decode_id_cursor(cursor)
    if before_id is not None:
        query = query.where(col(RiskAssessment.id) < before_id)
    return id_page(list(session.exec(query.order_by(col(RiskAssessment.id).desc()).limit(limit + 1))), limit)


def rescore_all(
    session: Session, matrix: RiskMatrix, rationale: str, who: Principal, settings: Settings
) -> RescoreResult:
    """Move every open risk scored on an older matrix onto `matrix`: an explicit, recorded reassessment each.

    All or nothing: if any risk's likelihood or impact does not exist on the new scales, nothing moves
    and the answer lists those risks, to be reassessed one by one with new values. Only an admin adopts a
    matrix, so acceptances stand (govern_acceptance); the answer lists those now above the appetite.
    """
    latest = matrices.current(session)
    if matrix.version != latest.version:
        raise Conflict(f"Only the current matrix (version {latest.version}) can be adopted.")
    spec = matrix.parsed()
    risks = list(
        session.exec(
            select(Risk)
            .where(Risk.status == RiskStatus.open, Risk.matrix_version != matrix.version)
            .order_by(col(Risk.id))
            .with_for_update()
        )
    )
    misfits = [
        field_error(("risks", r.reference), "likelihood or impact is outside the new scales; reassess it by hand")
        for r in risks
        if max(r.inherent_likelihood, r.residual_likelihood or 1) > len(spec.likelihood)
        or max(r.inherent_impact, r.residual_impact or 1) > len(spec.impact)
    ]
    if misfits:
        raise Conflict(f"{len(misfits)} risk(s) do not fit the new matrix; nothing was rescored.", errors=misfits)
    changes, accepted_above = [], []
    for risk in risks:
        old_level = risk.level
        assess_risk(
            session,
            risk,
            AssessmentCreate(rationale=rationale),
            who,
            settings,
            kind=AssessmentKind.rescore,
            matrix=matrix,
        )
        if risk.level != old_level:
            changes.append({"risk": risk.reference, "old_level": old_level, "new_level": risk.level})
        if risk.treatment == Treatment.accept and spec.above_appetite(risk.level):
            accepted_above.append(risk.reference)
    return RescoreResult(
        matrix_version=matrix.version, rescored=len(risks), level_changes=changes,
        accepted_above_appetite=accepted_above,
    )  # fmt: skip
