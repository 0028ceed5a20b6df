"""Scoring on a matrix, the review cadence and when a review is overdue."""

from datetime import datetime

from sqlalchemy import ColumnElement, and_
from sqlmodel import col

from riskops.errors import Unprocessable, field_error
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import Rating, Risk, RiskStatus, ScoredRating

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
