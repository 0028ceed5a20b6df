"""Scoring on a matrix, the review cadence and when a review is overdue, and who may accept a risk."""

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_
from sqlmodel import Session, col

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.errors import Forbidden, Unprocessable, field_error
from riskops.risks import history
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import AcceptanceIn, Rating, Risk, RiskStatus, ScoredRating, Treatment

Loc = tuple[str | int, ...]

RATING_COLUMNS = tuple(
    f"{which}_{part}" for which in ("inherent", "residual") for part in ("likelihood", "impact", "score", "level")
)


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


def set_ratings(risk: Risk, inherent: ScoredRating, residual: ScoredRating | None) -> None:
    """The rating columns, and the current rating: the residual where assessed, else the inherent."""
    for which, rating in (("inherent", inherent), ("residual", residual)):
        for part in ("likelihood", "impact", "score", "level"):
            setattr(risk, f"{which}_{part}", getattr(rating, part) if rating else None)
    current = residual or inherent
    risk.score, risk.level = current.score, current.level


# ---- review cadence ----


def schedule_review(risk: Risk, spec: MatrixSpec) -> None:
    """next_review_at follows the last review and the current level, unless a person set it by hand."""
    if not risk.next_review_set_by_hand:
        risk.next_review_at = risk.last_reviewed_at + spec.review_interval(risk.level)


def is_overdue(status: str, next_review_at: datetime | None, now: datetime) -> bool:
    """An open risk whose review date has passed. overdue_clause is the same rule in SQL."""
    return status == RiskStatus.open and next_review_at is not None and next_review_at < now


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """is_overdue as a condition on the risk table (next_review_at is never null there)."""
    return and_(col(Risk.status) == RiskStatus.open, col(Risk.next_review_at) < now)


# ---- acceptance ----


def may_hold_acceptance(spec: MatrixSpec, level: str, who: Principal) -> bool:
    """Anyone may accept a risk within the appetite; above it, only an admin."""
    return not spec.above_appetite(level) or who.may(Role.admin)


def check_acceptance(risk: Risk, spec: MatrixSpec, acceptance: AcceptanceIn | None, who: Principal, loc: Loc) -> None:
    """Accepting needs an approver and a future expiry; above the appetite it needs an admin."""
    held = (risk.acceptance_approver, risk.acceptance_expires_at)
    granted = acceptance_of(risk.treatment, risk.level, held, spec, acceptance, who, loc)
    if granted != held:
        risk.acceptance_approver, risk.acceptance_expires_at = granted


def acceptance_of(
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
    before = history.risk_state(risk)
    approver, expires_at = risk.acceptance_approver, risk.acceptance_expires_at
    risk.treatment = Treatment.mitigate
    risk.acceptance_approver = risk.acceptance_expires_at = None
    voided = {
        "old_approver": approver, "old_expires_at": expires_at.isoformat() if expires_at else None,
        "new_level": risk.level, "appetite": spec.appetite,
    }  # fmt: skip
    note = f"Level '{risk.level}' is above the risk appetite ('{spec.appetite}'); only an admin may keep it accepted."
    history.record(session, risk, "acceptance_voided", who, before, settings, note=note, extra=voided)
