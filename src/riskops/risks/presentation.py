"""A risk and an assessment as the API shows them."""

from typing import Literal

from riskops.clock import now as utcnow
from riskops.risks.appetite.models import appetite_response
from riskops.risks.library import ControlPublic
from riskops.risks.models import Acceptance, AssessmentPublic, Risk, RiskAssessment, RiskControl, RiskPublic, statement
from riskops.risks.ratings import ScoredRating, Target
from riskops.risks.scoring import is_overdue


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
        type=risk.type,
        cause=risk.cause,
        event=risk.event,
        consequence=risk.consequence,
        statement=statement(risk.type, risk.cause, risk.event, risk.consequence),
        source=risk.source,
        objectives=risk.objectives,
        category=risk.category,
        owner=risk.owner,
        status=risk.status,
        treatment=risk.treatment,
        tags=risk.tags,
        matrix_version=risk.matrix_version,
        inherent=_rating_of(risk, "inherent"),
        residual=_rating_of(risk, "residual"),
        target=_target_of(risk),
        score=risk.score,
        level=risk.level,
        outside_appetite=risk.outside_appetite,
        beyond_tolerance=risk.beyond_tolerance,
        appetite_response=appetite_response(
            risk.outside_appetite, risk.target_within_appetite, risk.acceptance_expires_at, now
        ),
        acceptance=acceptance,
        controls=[present_control(c) for c in risk.controls],
        created_at=risk.created_at,
        updated_at=risk.updated_at,
        last_reviewed_at=risk.last_reviewed_at,
        next_review_at=risk.next_review_at,
        next_review_set_by_hand=risk.next_review_set_by_hand,
        overdue=is_overdue(risk.status, risk.next_review_at, now),
        closed_at=risk.closed_at,
        closure_reason=risk.closure_reason,
        materialised_at=risk.materialised_at,
        version=risk.version,
        kri_status=risk.kri_status,
    )


def present_control(applied: RiskControl) -> ControlPublic:
    control = applied.control
    return ControlPublic(
        id=applied.id,
        control_id=control.id,
        control_reference=control.reference,
        title=control.title,
        owner=control.owner,
        type=control.type,
        effectiveness=control.effectiveness,
        status=applied.status,
        due_date=applied.due_date,
        created_at=applied.created_at,
        updated_at=applied.updated_at,
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
        impacts=getattr(row, f"{which}_impacts"),
    )


def _target_of(risk: Risk) -> Target | None:
    if risk.target_likelihood is None or risk.target_impact is None:
        return None
    return Target(
        likelihood=risk.target_likelihood, impact=risk.target_impact, score=risk.target_score or 0,
        level=risk.target_level or "", date=risk.target_date,
    )  # fmt: skip
