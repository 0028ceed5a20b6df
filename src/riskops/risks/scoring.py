"""Scoring on a matrix, the review cadence and when a review is overdue."""

from datetime import date, datetime

from sqlalchemy import ColumnElement, and_
from sqlmodel import col

from riskops.errors import Unprocessable, field_error
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import TREATMENTS, Risk, RiskStatus, RiskType, Treatment
from riskops.risks.ratings import Rating, ScoredRating, TargetRating

Loc = tuple[str | int, ...]

_PARTS = ("likelihood", "impact", "impacts", "score", "level")
RATING_COLUMNS = tuple(f"{which}_{part}" for which in ("inherent", "residual") for part in _PARTS)


def score(spec: MatrixSpec, rating: Rating, loc: Loc) -> ScoredRating:
    """The rating on `spec`. Impacts given per dimension must be dimensions of the matrix's criteria, and the
    overall impact is the highest of them: the worst consequence decides."""
    errors = []
    for axis, scale in (("likelihood", spec.likelihood), ("impact", spec.impact)):
        value = getattr(rating, axis)
        if not 1 <= value <= len(scale):
            errors.append(field_error((*loc, axis), f"must be between 1 and {len(scale)} on the '{spec.name}' matrix"))
    if rating.impacts is not None:
        errors += _impacts_errors(spec, rating, loc)
    if errors:
        raise Unprocessable(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
    return ScoredRating(
        likelihood=rating.likelihood,
        impact=rating.impact,
        score=rating.likelihood * rating.impact,
        level=spec.level_of(rating.likelihood, rating.impact),
        impacts=dict(sorted(rating.impacts.items())) if rating.impacts else None,
    )


def _impacts_errors(spec: MatrixSpec, rating: Rating, loc: Loc) -> list[dict[str, str]]:
    impacts = rating.impacts or {}
    dimensions = [dimension.key for dimension in spec.impact_criteria]
    if not impacts:
        return [field_error((*loc, "impacts"), "give at least one dimension, or leave impacts out")]
    errors = [
        field_error((*loc, "impacts", key), f"is not an impact dimension of the '{spec.name}' matrix; "
                    f"its dimensions are: {', '.join(dimensions) or 'none'}")
        for key in impacts if key not in dimensions
    ] + [
        field_error((*loc, "impacts", key), f"must be between 1 and {len(spec.impact)} on the '{spec.name}' matrix")
        for key, value in impacts.items() if not 1 <= value <= len(spec.impact)
    ]  # fmt: skip
    if not errors and rating.impact != max(impacts.values()):
        errors.append(field_error((*loc, "impact"), f"must be the highest of impacts ({max(impacts.values())})"))
    return errors


def set_ratings(risk: Risk, inherent: ScoredRating, residual: ScoredRating | None) -> None:
    """The rating columns, and the current rating: the residual where assessed, else the inherent."""
    for which, rating in (("inherent", inherent), ("residual", residual)):
        for part in _PARTS:
            setattr(risk, f"{which}_{part}", getattr(rating, part) if rating else None)
    current = residual or inherent
    risk.score, risk.level = current.score, current.level


# ---- the type of risk and its target ----


def check_treatment(risk_type: RiskType, treatment: Treatment, loc: Loc) -> None:
    """A threat is avoided, mitigated, transferred or accepted; an opportunity exploited, enhanced, shared or
    accepted."""
    allowed = TREATMENTS[risk_type]
    if treatment not in allowed:
        raise Unprocessable(
            f"{_article(risk_type)} {risk_type} is not treated by '{treatment}'; its treatments are "
            f"{', '.join(allowed)}.",
            errors=[field_error((*loc, "treatment"), f"must be one of {', '.join(allowed)} for a {risk_type}")],
        )


def _article(risk_type: RiskType) -> str:
    return "An" if risk_type == RiskType.opportunity else "A"


def target_of(
    spec: MatrixSpec, target: TargetRating, risk_type: RiskType, current_score: int, loc: Loc
) -> ScoredRating:
    """The target on `spec`: a threat's may not be above its current rating (the plan would make it worse), an
    opportunity's not below it."""
    scored = score(spec, Rating(likelihood=target.likelihood, impact=target.impact), (*loc, "target"))
    worse = scored.score > current_score if risk_type == RiskType.threat else scored.score < current_score
    if worse:
        side = "above" if risk_type == RiskType.threat else "below"
        raise Unprocessable(
            f"The target (score {scored.score}) is {side} the current rating (score {current_score}).",
            errors=[field_error((*loc, "target"), f"must not be {side} the current rating (score {current_score})")],
        )
    return scored


def set_target(risk: Risk, target: ScoredRating | None, when: date | None) -> None:
    for part in ("likelihood", "impact", "score", "level"):
        setattr(risk, f"target_{part}", getattr(target, part) if target else None)
    risk.target_date = when if target else None


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
