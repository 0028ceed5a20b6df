"""The notice store: planning, cancelling and claiming notices, and claiming a periodic job's period.

It knows no domain. Each domain's `scheduled.py` plans its notices here and names, in its NOTICE_HANDLERS,
the function that acts on each kind when it is due; `riskops.worker` claims and dispatches.
"""

from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from riskops.config import Settings
from riskops.db import Database, insert_unless_present, table_of
from riskops.notices.models import Notice, PeriodicRun

# What a domain registers: a function acting on a due notice of a kind, in the transaction that marks it fired;
# and a periodic job, which claims its period with `claim_period` and answers whether it ran.
NoticeHandler = Callable[[Session, Notice, Settings], None]
PeriodicJob = Callable[[Database, Settings], bool]


def notice(
    kind: str, subject_type: str, subject_id: int | None, ref: str, due_at: datetime, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A notice to plan (see plan)."""
    assert subject_id is not None, "plan notices after the subject is flushed"
    return {
        "kind": kind, "subject_type": subject_type, "subject_id": subject_id, "ref": ref,
        "due_at": due_at, "data": data or {}, "fired_at": None,
    }  # fmt: skip


def plan(session: Session, notices: list[dict[str, Any]]) -> None:
    """Add notices, skipping any planned before (same kind, subject and ref), fired or not: one statement,
    the unique constraint deciding (INSERT ... ON CONFLICT DO NOTHING on both databases)."""
    if not notices:
        return
    session.connection().execute(insert_unless_present(session, table_of(Notice)), notices)


def cancel(session: Session, subject_type: str, subject_id: int, kinds: Iterable[str]) -> None:
    """Drop the pending notices of these kinds for a subject (fired ones stay as the record of what was sent)."""
    cancel_all(session, subject_type, [subject_id], kinds)


def cancel_all(session: Session, subject_type: str, subject_ids: Collection[int], kinds: Iterable[str]) -> None:
    """`cancel` for several subjects of a type, in one statement."""
    session.exec(
        delete(Notice).where(
            col(Notice.subject_type) == subject_type,
            col(Notice.subject_id).in_(subject_ids),
            col(Notice.kind).in_(list(kinds)),
            col(Notice.fired_at).is_(None),
        )
    )


def claim_due(session: Session, now: datetime, limit: int) -> list[Notice]:
    """Due, unfired notices, locked for this transaction: another instance skips them (PostgreSQL),
    or waits for this writer and then finds them fired (SQLite)."""
    query = (
        select(Notice)
        .where(col(Notice.fired_at).is_(None), col(Notice.due_at) <= now)
        .order_by(col(Notice.due_at), col(Notice.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.exec(query))


def claim_period(session: Session, job: str, period: str) -> bool:
    """Claim a periodic job's run for one period: true for exactly one claimer among any number of instances.

    The claim is a row under a unique key, written in the caller's transaction with the job's work."""
    if session.exec(select(PeriodicRun.id).where(PeriodicRun.job == job, PeriodicRun.period == period)).first():
        return False
    try:
        with session.begin_nested():
            session.add(PeriodicRun(job=job, period=period))
    except IntegrityError:  # a racing instance claimed it first
        return False
    return True
