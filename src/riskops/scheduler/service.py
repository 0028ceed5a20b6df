"""Planning, cancelling and claiming notices: the durable half of the scheduler."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, delete, select

from riskops.db import insert_unless_present
from riskops.scheduler.models import Notice


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
    session.connection().execute(insert_unless_present(session, Notice.__table__), notices)  # type: ignore[attr-defined]


def cancel(session: Session, subject_type: str, subject_id: int, kinds: Iterable[str]) -> None:
    """Drop the pending notices of these kinds for a subject (fired ones stay as the record of what was sent)."""
    session.exec(
        delete(Notice).where(
            col(Notice.subject_type) == subject_type,
            col(Notice.subject_id) == subject_id,
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
