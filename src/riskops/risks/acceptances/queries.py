"""Who accepted what, until when, on whose approval: the acceptance list with its filters, and one acceptance
with its decisions and the state of each risk they applied to."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, func, select

from riskops.pagination import decode_id_cursor, id_page
from riskops.risks import service as risks
from riskops.risks.acceptances import service
from riskops.risks.acceptances.models import (
    AcceptanceDecision,
    AcceptancePublic,
    AcceptanceRecord,
    AcceptanceRisk,
    AcceptanceState,
    AcceptanceStatus,
    AcceptanceSummary,
    ApprovalNeeded,
    CoveredRisk,
    DecisionKind,
    DecisionPublic,
    RiskStatePublic,
    reference,
)
from riskops.risks.models import Risk, RiskStatus, category_key
from riskops.risks.models import reference as risk_reference
from riskops.risks.ratings import ScoredRating


@dataclass(frozen=True)
class AcceptanceFilter:
    status: list[AcceptanceStatus] = field(default_factory=list)
    risk: str | None = None  # R-0042
    category: str | None = None  # of a covered risk, now; without regard to case
    expiring_before: datetime | None = None
    needs_reapproval: bool | None = None
    requested_by: str | None = None  # without regard to case
    approved_by: str | None = None


def list_acceptances(
    session: Session, filters: AcceptanceFilter, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[AcceptanceSummary], str | None]:
    """Newest first."""
    query = select(AcceptanceRecord)
    after = decode_id_cursor(cursor)
    if after is not None:
        query = query.where(col(AcceptanceRecord.id) < after)
    if filters.status:
        query = query.where(col(AcceptanceRecord.status).in_(filters.status))
    covering = select(AcceptanceRisk.acceptance_id)
    if filters.risk is not None:
        risk_id = risks.parse_risk_ref(filters.risk)
        query = query.where(col(AcceptanceRecord.id).in_(covering.where(AcceptanceRisk.risk_id == risk_id)))
    if filters.category is not None:
        in_category = covering.join(Risk, col(Risk.id) == col(AcceptanceRisk.risk_id)).where(
            func.lower(col(Risk.category)) == category_key(filters.category)
        )
        query = query.where(col(AcceptanceRecord.id).in_(in_category))
    if filters.expiring_before is not None:
        query = query.where(col(AcceptanceRecord.expires_at) < filters.expiring_before)
    if filters.needs_reapproval is not None:
        query = query.where(AcceptanceRecord.needs_reapproval == filters.needs_reapproval)
    if filters.requested_by is not None:
        query = query.where(func.lower(col(AcceptanceRecord.requested_by)) == filters.requested_by.strip().lower())
    if filters.approved_by is not None:
        approved = select(AcceptanceDecision.acceptance_id).where(
            AcceptanceDecision.kind == DecisionKind.approve,
            func.lower(col(AcceptanceDecision.decided_by)) == filters.approved_by.strip().lower(),
        )
        query = query.where(col(AcceptanceRecord.id).in_(approved))
    rows = list(session.exec(query.order_by(col(AcceptanceRecord.id).desc()).limit(limit + 1)))
    page, next_cursor = id_page(rows, limit)
    return summaries(session, page), next_cursor


def summaries(
    session: Session, rows: Sequence[AcceptanceRecord], *, as_of: datetime | None = None
) -> list[AcceptanceSummary]:
    """The acceptances with their risks and approvers (those who had approved by `as_of`, when given), read for
    all of them at once."""
    ids = [row.id for row in rows]
    covered: dict[int, list[str]] = defaultdict(list)
    for acceptance_id, risk_id in session.exec(
        select(AcceptanceRisk.acceptance_id, AcceptanceRisk.risk_id)
        .where(col(AcceptanceRisk.acceptance_id).in_(ids))
        .order_by(col(AcceptanceRisk.risk_id))
    ):
        covered[acceptance_id].append(risk_reference(risk_id))
    approvals = select(AcceptanceDecision.acceptance_id, AcceptanceDecision.decided_by).where(
        col(AcceptanceDecision.acceptance_id).in_(ids), AcceptanceDecision.kind == DecisionKind.approve
    )
    if as_of is not None:
        approvals = approvals.where(col(AcceptanceDecision.decided_at) <= as_of)
    approvers: dict[int, list[str]] = defaultdict(list)
    for acceptance_id, name in session.exec(approvals.order_by(col(AcceptanceDecision.id))):
        approvers[acceptance_id].append(name)
    return [_summary(row, covered[row.id], approvers[row.id]) for row in rows]


def _summary(row: AcceptanceRecord, covered: list[str], approvers: list[str]) -> AcceptanceSummary:
    return AcceptanceSummary(
        reference=row.reference, status=row.status, risks=covered, requested_by=row.requested_by,
        requested_at=row.requested_at, justification=row.justification, conditions=row.conditions,
        expires_at=row.expires_at, needs_reapproval=row.needs_reapproval, recorded=row.recorded,
        extends=reference(row.extends_id) if row.extends_id is not None else None, approved_by=approvers,
        approved_at=row.approved_at, ended_at=row.ended_at, version=row.version,
    )  # fmt: skip


def detail(session: Session, acceptance: AcceptanceRecord) -> AcceptancePublic:
    [summary] = summaries(session, [acceptance])
    made = service.decisions(session, acceptance.id)
    states: dict[int, list[RiskStatePublic]] = defaultdict(list)
    for state in session.exec(
        select(AcceptanceState).where(AcceptanceState.acceptance_id == acceptance.id).order_by(col(AcceptanceState.id))
    ):
        states[state.risk_id].append(_state(state))
    rows = session.exec(
        select(AcceptanceRisk, Risk)
        .join(Risk, col(Risk.id) == col(AcceptanceRisk.risk_id))
        .where(AcceptanceRisk.acceptance_id == acceptance.id)
        .order_by(col(AcceptanceRisk.risk_id))
    ).all()
    in_force = acceptance.status == AcceptanceStatus.approved
    covered = [
        CoveredRisk(
            risk=risk.reference,
            title=risk.title,
            treatment_before=cover.treatment_before,
            in_force=in_force and cover.released_at is None,
            released_at=cover.released_at,
            released_reason=cover.released_reason,
            states=states[risk.id],
        )  # fmt: skip
        for cover, risk in rows
    ]
    approval = None
    if acceptance.status == AcceptanceStatus.requested:
        needed, admin = service.approvals_needed(
            service.standing(session, [risk for _, risk in rows if risk.status == RiskStatus.open])
        )
        given = sum(d.kind == DecisionKind.approve for d in made)
        approval = ApprovalNeeded(approvals=needed, admin=admin, given=given)
    return AcceptancePublic(
        **summary.model_dump(), approval=approval, covered=covered,
        decisions=[DecisionPublic.model_validate(d, from_attributes=True) for d in made],
    )  # fmt: skip


def _state(state: AcceptanceState) -> RiskStatePublic:
    residual = None
    if state.residual_likelihood is not None:
        residual = ScoredRating(
            likelihood=state.residual_likelihood, impact=state.residual_impact or 0,
            score=state.residual_score or 0, level=state.residual_level or "",
        )  # fmt: skip
    return RiskStatePublic(
        decision=state.decision_id, at=state.at, status=state.status, treatment=state.treatment,
        category=state.category, matrix_version=state.matrix_version,
        inherent=ScoredRating(likelihood=state.inherent_likelihood, impact=state.inherent_impact,
                              score=state.inherent_score, level=state.inherent_level),
        residual=residual, level=state.level, appetite=state.appetite, tolerance=state.tolerance,
        outside_appetite=state.outside_appetite, beyond_tolerance=state.beyond_tolerance,
    )  # fmt: skip
