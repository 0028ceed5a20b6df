"""A cycle's progress: per owner, and in totals for the list of cycles (open risks and their reviews)."""

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_
from sqlmodel import Session, col, func, select

from riskops.reviews.models import (
    CyclePublic,
    CycleSummary,
    OwnerProgress,
    ProgressTotals,
    ReviewCycle,
    ReviewOutcome,
    ReviewRequest,
    RiskReview,
    Snapshot,
)
from riskops.risks import scheduled as risk_deadlines
from riskops.risks.models import Risk, RiskStatus

# Progress counts the register's open risks, and their reviews in the cycle: per owner and in totals alike.
_UNDER_REVIEW = Risk.status == RiskStatus.open


def _cycle_fields(cycle: ReviewCycle, snapshot_hash: str | None) -> dict[str, Any]:
    return {
        "id": cycle.id, "state": "open" if cycle.closed_at is None else "closed", "starts_at": cycle.starts_at,
        "ends_at": cycle.ends_at, "opened_at": cycle.opened_at, "opened_by": cycle.opened_by,
        "closed_at": cycle.closed_at, "closed_by": cycle.closed_by, "snapshot_id": cycle.snapshot_id,
        "snapshot_hash": snapshot_hash,
    }  # fmt: skip


def present_cycle(session: Session, cycle: ReviewCycle) -> CyclePublic:
    snapshot = session.get(Snapshot, cycle.snapshot_id) if cycle.snapshot_id else None
    return CyclePublic(
        **_cycle_fields(cycle, snapshot.content_hash if snapshot else None), progress=progress(session, cycle)
    )


def list_cycles(session: Session) -> list[CycleSummary]:
    """Every cycle, newest first, with its progress totals: two statements, however many cycles and owners."""
    open_risks = select(func.count()).select_from(Risk).where(_UNDER_REVIEW).scalar_subquery()
    cycles = session.exec(
        select(ReviewCycle, Snapshot.content_hash, open_risks)
        .outerjoin(Snapshot, col(Snapshot.id) == col(ReviewCycle.snapshot_id))
        .order_by(col(ReviewCycle.starts_at).desc())
    ).all()
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for cycle_id, outcome, n in session.exec(
        select(RiskReview.cycle_id, RiskReview.outcome, func.count())
        .join(Risk, col(Risk.id) == col(RiskReview.risk_id))
        .where(_UNDER_REVIEW)
        .group_by(col(RiskReview.cycle_id), col(RiskReview.outcome))
    ):
        outcomes[cycle_id][outcome] += n
    return [
        CycleSummary(
            **_cycle_fields(cycle, digest),
            progress=ProgressTotals(
                risks=risks_open,
                reviewed=outcomes[cycle.id].total(),
                proposed_closure=outcomes[cycle.id][ReviewOutcome.proposed_closure],
            ),
        )
        for cycle, digest, risks_open in cycles
    ]


def progress(session: Session, cycle: ReviewCycle) -> list[OwnerProgress]:
    """Per owner, owners matched case-insensitively and shown as first seen (on their oldest open risk)."""
    rows = session.exec(
        select(Risk.owner, RiskReview.outcome)
        .select_from(Risk)
        .outerjoin(RiskReview, and_(col(RiskReview.risk_id) == col(Risk.id), col(RiskReview.cycle_id) == cycle.id))
        .where(_UNDER_REVIEW)
        .order_by(col(Risk.id))
    )
    names: dict[str, str] = {}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for owner, outcome in rows:
        key = risk_deadlines.owner_key(owner)
        names.setdefault(key, owner)
        counts[key]["risks"] += 1
        counts[key]["reviewed"] += outcome is not None
        counts[key]["proposed"] += outcome == ReviewOutcome.proposed_closure
    requests = {r.owner_key: r for r in session.exec(select(ReviewRequest).where(ReviewRequest.cycle_id == cycle.id))}
    return [
        OwnerProgress(
            owner=names[key],
            risks=c["risks"],
            reviewed=c["reviewed"],
            proposed_closure=c["proposed"],
            requested_at=requests[key].requested_at if key in requests else None,
            reminded_at=requests[key].reminded_at if key in requests else None,
        )
        for key, c in sorted(counts.items())
    ]


def open_cycles(session: Session) -> list[ReviewCycle]:
    """The cycles still taking reviews (not closed), newest first."""
    return list(
        session.exec(
            select(ReviewCycle).where(col(ReviewCycle.closed_at).is_(None)).order_by(col(ReviewCycle.starts_at).desc())
        )
    )


def owner_reviews(session: Session, cycle: ReviewCycle, owners: Sequence[str]) -> list[tuple[Risk, RiskReview | None]]:
    """The open risks of these owners (any case) that the cycle's progress counts, oldest first, each with its
    review in the cycle: None while it is still to do."""
    keys = sorted({risk_deadlines.owner_key(owner) for owner in owners})
    rows = session.exec(
        select(Risk, RiskReview)
        .outerjoin(RiskReview, and_(col(RiskReview.risk_id) == col(Risk.id), col(RiskReview.cycle_id) == cycle.id))
        .where(_UNDER_REVIEW, func.lower(Risk.owner).in_(keys))  # the owner index's expression
        .order_by(col(Risk.id))
    )
    return list(rows.all())
