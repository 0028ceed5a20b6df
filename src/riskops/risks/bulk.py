"""New risks as checked and scored before they are written, and writing many of them (an import) in a few
statements per thousand, with all that creating one writes. Callers commit."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.audit.models import AuditEntry
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import insert_numbered, table_of
from riskops.events import service as events
from riskops.notices import service as scheduler
from riskops.risks import history, scheduled
from riskops.risks.acceptances import records as acceptances
from riskops.risks.appetite import service as appetite
from riskops.risks.appetite.service import Limits
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import (
    AssessmentKind,
    Risk,
    RiskAssessment,
    RiskStatus,
    RiskTag,
    RiskType,
    Treatment,
    reference,
)
from riskops.risks.scoring import RATING_COLUMNS


@dataclass(frozen=True, slots=True)
class NewRisk:
    """A risk checked and scored on one matrix version, not yet written (flat and slotted: an import holds
    tens of thousands of them while it checks a file, before it takes the write lock)."""

    title: str
    description: str
    type: RiskType
    cause: str
    event: str
    consequence: str
    source: str
    objectives: tuple[str, ...]
    category: str
    owner: str
    treatment: Treatment
    tags: tuple[str, ...]
    rationale: str
    inherent_likelihood: int
    inherent_impact: int
    inherent_impacts: dict[str, int] | None
    inherent_score: int
    inherent_level: str
    residual_likelihood: int | None
    residual_impact: int | None
    residual_impacts: dict[str, int] | None
    residual_score: int | None
    residual_level: str | None
    target_likelihood: int | None
    target_impact: int | None
    target_score: int | None
    target_level: str | None
    target_date: date | None
    acceptance_approver: str | None
    acceptance_expires_at: datetime | None
    next_review_at: datetime | None  # set by hand; otherwise it follows from the level when written


def new_columns(new: NewRisk, matrix_version: int, spec: MatrixSpec, limits: Limits, now: datetime) -> dict[str, Any]:
    """Every column of a new risk, as create_risk and create_checked write it."""
    rated = "residual" if new.residual_level is not None else "inherent"
    level: str = getattr(new, f"{rated}_level")
    target = new.target_level
    return {
        "title": new.title, "description": new.description, "type": new.type, "cause": new.cause,
        "event": new.event, "consequence": new.consequence, "source": new.source, "objectives": list(new.objectives),
        "category": new.category, "owner": new.owner,
        "status": RiskStatus.open, "treatment": new.treatment, "matrix_version": matrix_version,
        "inherent_likelihood": new.inherent_likelihood, "inherent_impact": new.inherent_impact,
        "inherent_impacts": new.inherent_impacts,
        "inherent_score": new.inherent_score, "inherent_level": new.inherent_level,
        "residual_likelihood": new.residual_likelihood, "residual_impact": new.residual_impact,
        "residual_impacts": new.residual_impacts,
        "residual_score": new.residual_score, "residual_level": new.residual_level,
        "target_likelihood": new.target_likelihood, "target_impact": new.target_impact,
        "target_score": new.target_score, "target_level": target, "target_date": new.target_date,
        "score": getattr(new, f"{rated}_score"), "level": level,
        "outside_appetite": limits.outside(spec, level), "beyond_tolerance": limits.beyond_tolerance(spec, level),
        "target_within_appetite": target is not None and not limits.outside(spec, target),
        "acceptance_approver": new.acceptance_approver, "acceptance_expires_at": new.acceptance_expires_at,
        "created_at": now, "updated_at": now, "last_reviewed_at": now,
        # schedule_review's rule: the level's interval from the last review (now), unless set by hand
        "next_review_at": new.next_review_at or now + spec.review_interval(level),
        "next_review_set_by_hand": new.next_review_at is not None,
        "closed_at": None, "closure_reason": None, "materialised_at": None, "version": 1,
    }  # fmt: skip


# A batch of an import: large enough for few statements, small enough that its rows stay a few MB.
_BATCH = 500


def insert_new(
    session: Session, matrix_version: int, spec: MatrixSpec, risks: Sequence[NewRisk], who: Principal,
    settings: Settings,
) -> list[int]:  # fmt: skip
    """Write the risks a batch at a time; their ids, in order."""
    ids: list[int] = []
    appetites = appetite.load(session)
    for start in range(0, len(risks), _BATCH):
        batch = risks[start : start + _BATCH]
        ids += _insert_batch(session, matrix_version, spec, appetites, batch, who, settings)
    return ids


def _insert_batch(
    session: Session, matrix_version: int, spec: MatrixSpec, appetites: appetite.Appetites, batch: Sequence[NewRisk],
    who: Principal, settings: Settings,
) -> list[int]:  # fmt: skip
    now = utcnow()
    limits = [appetites.of(new.category, spec) for new in batch]
    rows = [new_columns(new, matrix_version, spec, lim, now) for new, lim in zip(batch, limits, strict=True)]
    # Accepted inline: recorded as approved outside riskops, once checked against the category's limits.
    accepted = [i for i, row in enumerate(rows) if row["acceptance_expires_at"] is not None]
    for i in accepted:
        acceptances.check_recorded(
            f"Risk '{batch[i].title}'", spec, limits[i], rows[i]["level"], rows[i]["acceptance_expires_at"], who,
            settings, ("body",),
        )  # fmt: skip
    ids = insert_numbered(session, Risk, rows)
    tags = [{"risk_id": risk_id, "tag": tag} for risk_id, new in zip(ids, batch, strict=True) for tag in new.tags]
    if tags:
        session.execute(insert(table_of(RiskTag)), tags)
    assessments: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    outbox = events.Outbox()
    notices: list[dict[str, Any]] = []
    for risk_id, new, columns in zip(ids, batch, rows, strict=True):
        assessments.append({
            "risk_id": risk_id, "kind": AssessmentKind.initial, "matrix_version": matrix_version,
            "rationale": new.rationale, "assessed_by": who.name, "assessed_at": now,
            **{name: columns[name] for name in RATING_COLUMNS},
        })  # fmt: skip
        changes = audit.service.diff({}, history.state_of(columns, new.tags))
        entries.append({
            "entity_type": "risk", "entity_id": str(risk_id), "action": "created", "actor": who.name, "at": now,
            "changes": changes, "note": new.rationale,
        })  # fmt: skip
        data = history.event_data(risk_id, columns, who, changes)
        outbox.emit(history.EVENT_FOR["created"], "risk", reference(risk_id), data, at=now)
        if columns["beyond_tolerance"]:
            outbox.emit(history.BEYOND_TOLERANCE, "risk", reference(risk_id), data, at=now)
        notices += _creation_notices(risk_id, columns, settings)
    session.execute(insert(table_of(RiskAssessment)), assessments)
    session.execute(insert(table_of(AuditEntry)), entries)
    recorded = [
        acceptances.Recorded({**rows[i], "id": ids[i]}, rows[i]["acceptance_approver"],
                             rows[i]["acceptance_expires_at"], acceptances.DEFAULT_PLAN, limits[i])
        for i in accepted
    ]  # fmt: skip
    acceptances.record_all(session, recorded, spec, who, settings, outbox)
    events.record(session, outbox)
    scheduler.plan(session, notices)
    session.flush()  # the deliveries, so that the session lets go of this batch
    return ids


def _creation_notices(risk_id: int, columns: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """What plan_notices and plan_owner_assigned plan for a new open risk, as rows for one statement a batch."""
    return [
        *scheduled.date_notices(risk_id, columns["next_review_at"], settings),
        scheduled.owner_assigned_notice(risk_id, columns["owner"], columns["version"], columns["created_at"]),
    ]
