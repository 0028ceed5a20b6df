"""Quarterly review cycles: the fiscal quarters, opening and closing a cycle, asking owners to review (and
reminding them), their reviews, and what moved in a cycle since the one before."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, func, select, update

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import insert_unless_present, table_of
from riskops.errors import Conflict, InvalidTransition, NotFound, Unprocessable, field_error
from riskops.events import service as events
from riskops.mail import service as mail
from riskops.reviews import snapshots
from riskops.reviews.models import (
    Content,
    ReminderPublic,
    ReviewCreate,
    ReviewCycle,
    ReviewOutcome,
    ReviewRequest,
    RiskReview,
    Snapshot,
)
from riskops.reviews.movements import movements
from riskops.risks import scheduled as risk_deadlines
from riskops.risks import service as risks
from riskops.risks.models import AssessmentCreate, Risk, RiskStatus, reference

# ---- quarters ----


def cycle_id_for(moment: datetime, start_month: int) -> str:
    """The fiscal quarter containing `moment`; a fiscal year is named by the calendar year it starts in."""
    months = (moment.year * 12 + moment.month - 1) - (start_month - 1)
    year, month_in_year = divmod(months, 12)
    return f"{year}Q{month_in_year // 3 + 1}"


def bounds(cycle_id: str, start_month: int) -> tuple[datetime, datetime]:
    """The quarter's start and end (exclusive); ValueError for a quarter outside years 1 to 9999."""
    year, quarter = int(cycle_id[:4]), int(cycle_id[5])
    first = year * 12 + (start_month - 1) + (quarter - 1) * 3
    start = datetime(first // 12, first % 12 + 1, 1, tzinfo=UTC)
    end_index = first + 3
    return start, datetime(end_index // 12, end_index % 12 + 1, 1, tzinfo=UTC)


def previous_quarter(cycle_id: str) -> str:
    """The quarter before, by counting (so the first datable quarter has one too: a cycle that never exists)."""
    year, quarter = int(cycle_id[:4]), int(cycle_id[5])
    return f"{year:04d}Q{quarter - 1}" if quarter > 1 else f"{year - 1:04d}Q4"


# ---- cycles ----


def get_cycle(session: Session, cycle_id: str, *, for_update: bool = False) -> ReviewCycle:
    cycle = session.get(ReviewCycle, cycle_id, with_for_update=for_update)
    if cycle is None:
        raise NotFound(f"Review cycle {cycle_id} does not exist; open it first.")
    return cycle


def open_cycle(session: Session, cycle_id: str, who: Principal, settings: Settings) -> ReviewCycle:
    """Open a quarter's review once the quarter has started, and ask every owner to review their open risks."""
    try:
        start, end = bounds(cycle_id, settings.fiscal_year_start_month)
    except ValueError:
        raise Unprocessable(
            f"{cycle_id} is not a quarter riskops can date.", errors=[field_error(("body", "cycle"), "years 1 to 9999")]
        ) from None
    if start > utcnow():  # owners asked weeks early would review a register that is still moving
        raise Conflict(
            f"Review cycle {cycle_id} can be opened once its quarter starts, on {start:%Y-%m-%d}.",
            errors=[field_error(("body", "cycle"), f"starts {start:%Y-%m-%d}")],
        )
    if session.get(ReviewCycle, cycle_id) is not None:
        raise Conflict(f"Review cycle {cycle_id} was opened already.")
    cycle = ReviewCycle(id=cycle_id, starts_at=start, ends_at=end, opened_by=who.name)
    session.add(cycle)
    session.flush()
    owners = open_risks_by_owner(session)
    for key, found in sorted(owners.items()):
        if _claim_request(session, cycle, key, found.owner):
            _send_request(session, cycle, found.owner, found.risk_ids)
    audit.service.record(
        session, entity_type="review_cycle", entity_id=cycle_id, action="opened", actor=who.name,
        changes={"owners": {"old": None, "new": len(owners)}},
    )  # fmt: skip
    return cycle


def current_open_cycle(session: Session) -> ReviewCycle | None:
    """The open cycle of the quarter under way, if any (one whose quarter is over is left to be closed)."""
    now = utcnow()
    return session.exec(
        select(ReviewCycle)
        .where(col(ReviewCycle.closed_at).is_(None), col(ReviewCycle.starts_at) <= now, col(ReviewCycle.ends_at) > now)
        .order_by(col(ReviewCycle.starts_at).desc())
    ).first()


@dataclass(frozen=True)
class OwnerRisks:
    owner: str  # as spelt on the owner's oldest open risk
    risk_ids: list[int]


def open_risks_by_owner(session: Session, key: str | None = None) -> dict[str, OwnerRisks]:
    """Open risks by owner key (owners match case-insensitively, risks.scheduled.owner_key), oldest first;
    only that owner's with `key`."""
    query = select(Risk.id, Risk.owner).where(Risk.status == RiskStatus.open).order_by(col(Risk.id))
    if key is not None:
        query = query.where(func.lower(Risk.owner) == key)  # the owner index's expression
    out: dict[str, OwnerRisks] = {}
    for risk_id, owner in session.exec(query):
        out.setdefault(risk_deadlines.owner_key(owner), OwnerRisks(owner, [])).risk_ids.append(risk_id)
    return out


def request_review(session: Session, cycle: ReviewCycle, owner: str) -> bool:
    """Ask an owner (matched case-insensitively) to review their open risks in the cycle, once per cycle:
    False when they were asked already."""
    key = risk_deadlines.owner_key(owner)
    if not _claim_request(session, cycle, key, owner):
        return False
    found = open_risks_by_owner(session, key).get(key)
    _send_request(session, cycle, owner, found.risk_ids if found else [])
    return True


def _claim_request(session: Session, cycle: ReviewCycle, key: str, owner: str) -> bool:
    """Record the owner's request in the cycle unless there is one: False if there was. The unique key decides
    (INSERT ... ON CONFLICT DO NOTHING), so concurrent workers and admins never ask twice nor fail."""
    row = {"cycle_id": cycle.id, "owner_key": key, "owner": owner, "requested_at": utcnow(), "reminded_at": None}
    table = table_of(ReviewRequest)
    claimed = insert_unless_present(session, table).values(row).returning(table.c.id)
    return session.connection().execute(claimed).first() is not None


def _send_request(
    session: Session, cycle: ReviewCycle, owner: str, risk_ids: list[int], *, reminder: bool = False
) -> None:
    refs = [reference(risk_id) for risk_id in risk_ids]
    data = {
        "cycle": cycle.id, "owner": owner, "risks": refs, "ends_at": cycle.ends_at.isoformat(), "reminder": reminder,
    }  # fmt: skip
    events.emit(session, "review.requested", "review", cycle.id, data)
    if mail.looks_like_address(owner):
        mail.queue(
            session, owner,
            f"[riskops] {'Reminder: q' if reminder else 'Q'}uarterly risk review {cycle.id}: {len(refs)} risk(s)",
            f"Please review these risks in riskops before {cycle.ends_at:%Y-%m-%d}: {', '.join(refs)}.",
        )  # fmt: skip


def remind(session: Session, cycle: ReviewCycle, who: Principal, owner: str | None = None) -> ReminderPublic:
    """Ask again every owner with open risks, or the one given (any case), and note when on their requests
    (an owner never asked gets a request now)."""
    if cycle.closed_at is not None:
        raise InvalidTransition(f"Review cycle {cycle.id} is closed: there is nothing left to review.", allowed=[])
    key = None if owner is None else risk_deadlines.owner_key(owner)
    owners = open_risks_by_owner(session, key)
    if key is not None and key not in owners:
        raise NotFound(f"{owner} has no open risks to review.")
    now = utcnow()
    for found_key, found in sorted(owners.items()):
        _claim_request(session, cycle, found_key, found.owner)
        _send_request(session, cycle, found.owner, found.risk_ids, reminder=True)
    session.exec(
        update(ReviewRequest)
        .where(col(ReviewRequest.cycle_id) == cycle.id, col(ReviewRequest.owner_key).in_(list(owners)))
        .values(reminded_at=now)
    )
    names = [found.owner for _, found in sorted(owners.items())]
    audit.service.record(
        session, entity_type="review_cycle", entity_id=cycle.id, action="reminded", actor=who.name,
        changes={"reminded": {"old": None, "new": names}},
    )  # fmt: skip
    return ReminderPublic(cycle=cycle.id, reminded=names, reminded_at=now)


def record_review(
    session: Session, cycle: ReviewCycle, risk: Risk, data: ReviewCreate, who: Principal, settings: Settings
) -> RiskReview:
    """An owner's review of one risk in the cycle; reviewed and reassessed restart its review clock."""
    if cycle.closed_at is not None:
        raise InvalidTransition(f"Review cycle {cycle.id} is closed.", allowed=[])
    if data.outcome != ReviewOutcome.reassessed and (data.inherent or data.residual):
        raise Unprocessable(
            "New scores go with outcome 'reassessed'.", errors=[field_error(("body", "outcome"), "must be reassessed")]
        )
    if data.outcome == ReviewOutcome.reassessed and not (data.inherent or data.residual):
        raise Unprocessable(
            "A reassessment needs new scores.", errors=[field_error(("body", "inherent"), "inherent or residual")]
        )
    if data.outcome != ReviewOutcome.proposed_closure:
        assessment = AssessmentCreate(
            inherent=data.inherent, residual=data.residual, rationale=f"{cycle.id}: {data.comment}"
        )
        risks.assess_risk(session, risk, assessment, who, settings)
    review = session.exec(
        select(RiskReview).where(RiskReview.cycle_id == cycle.id, RiskReview.risk_id == risk.id)
    ).first() or RiskReview(cycle_id=cycle.id, risk_id=risk.id, outcome=data.outcome, comment="", reviewer="")
    review.outcome, review.comment, review.reviewer, review.reviewed_at = data.outcome, data.comment, who.name, utcnow()
    session.add(review)
    session.flush()
    return review


def close_cycle(session: Session, cycle: ReviewCycle, who: Principal) -> Snapshot:
    """Freeze the register as it stood at the earlier of now and the quarter's end."""
    if cycle.closed_at is not None:
        raise InvalidTransition(f"Review cycle {cycle.id} was closed at {cycle.closed_at.isoformat()}.", allowed=[])
    now = utcnow()
    if now < cycle.starts_at:
        raise InvalidTransition(f"Review cycle {cycle.id} has not started yet.", allowed=[])
    snapshot = snapshots.take_snapshot(session, min(now, cycle.ends_at), who, cycle=cycle)
    cycle.closed_at, cycle.closed_by, cycle.snapshot_id = now, who.name, snapshot.id
    session.add(cycle)
    audit.service.record(
        session, entity_type="review_cycle", entity_id=cycle.id, action="closed", actor=who.name,
        changes={"snapshot": {"old": None, "new": snapshot.content_hash}},
    )  # fmt: skip
    return snapshot


def cycle_snapshot(session: Session, cycle_id: str) -> Snapshot:
    cycle = get_cycle(session, cycle_id)
    if cycle.snapshot_id is None:
        raise Conflict(f"Review cycle {cycle_id} is not closed yet: its frozen snapshot does not exist.")
    return snapshots.get_snapshot(session, cycle.snapshot_id)


def previous_cycle_content(session: Session, cycle_id: str) -> Content | None:
    """The frozen register of the quarter before, which a cycle's movements start from by default: None unless
    that cycle was opened and closed (then everything counts as added)."""
    before = session.get(ReviewCycle, previous_quarter(cycle_id))
    return snapshots.get_snapshot(session, before.snapshot_id).content if before and before.snapshot_id else None


def cycle_movements(session: Session, cycle_id: str, since: str | None = None) -> dict[str, Any]:
    """What moved from `since`'s frozen snapshot (which must be closed), or the previous quarter's, to the
    cycle's own (to now, while it is open)."""
    cycle = get_cycle(session, cycle_id)
    new = (
        snapshots.get_snapshot(session, cycle.snapshot_id).content
        if cycle.snapshot_id
        else snapshots.live_content(session)
    )
    old = cycle_snapshot(session, since).content if since is not None else previous_cycle_content(session, cycle_id)
    return movements(old, new)
