"""The outbox: events are rows added to the caller's transaction, fanned out to subscriptions in it too."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import ColumnElement, insert
from sqlmodel import Session, col, select

from riskops.clock import now as utcnow
from riskops.db import insert_numbered
from riskops.events.models import Delivery, Event, EventPublic, SubscriptionStatus, WebhookSubscription, matches
from riskops.pagination import decode_id_cursor, id_page


class Stored(Protocol):
    """An event written to the outbox: what its fan-out needs to know of it."""

    @property
    def id(self) -> int: ...

    @property
    def type(self) -> str: ...


class StoredEvent(NamedTuple):
    id: int
    type: str


@dataclass
class Outbox:
    """Events of one change, gathered to be recorded together (see `record`): one insert and one fan-out."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def emit(
        self, event_type: str, subject_type: str, subject_id: str, data: dict[str, Any], *, at: datetime | None = None
    ) -> None:
        """An event of the change; `at` when the change has one time for all it writes (else now)."""
        self.rows.append(
            {"type": event_type, "subject_type": subject_type, "subject_id": subject_id,
             "occurred_at": at or utcnow(), "data": data}
        )  # fmt: skip


def record(session: Session, outbox: Outbox) -> list[StoredEvent]:
    """Write the outbox's events, in order, and queue their deliveries, in the caller's transaction."""
    if not outbox.rows:
        return []
    ids = insert_numbered(session, Event, outbox.rows)
    stored = [StoredEvent(event_id, row["type"]) for event_id, row in zip(ids, outbox.rows, strict=True)]
    fan_out_to(session, stored)
    outbox.rows = []
    return stored


def emit(
    session: Session, event_type: str, subject_type: str, subject_id: str, data: dict[str, Any],
    *, targets: Collection[int] = (), fan_out: bool = True,
) -> Event:  # fmt: skip
    """Record an event and queue its deliveries, in the caller's transaction: both commit or neither.

    Deliveries go to the subscriptions whose patterns match (unless fan_out is off) and to `targets`.
    """
    event = Event(type=event_type, subject_type=subject_type, subject_id=subject_id, data=data)
    session.add(event)
    session.flush()
    fan_out_to(session, [event], targets, fan_out=fan_out)
    return event


def fan_out_to(
    session: Session, events: Sequence[Stored], targets: Collection[int] = (), *, fan_out: bool = True
) -> int:
    """A delivery per stored event and subscription that wants it (by type) or is named in `targets`, with one
    look at the subscriptions and one insert."""
    subs = session.exec(
        select(WebhookSubscription.id, WebhookSubscription.event_types).where(
            col(WebhookSubscription.status) != SubscriptionStatus.disabled
        )
    ).all()
    rows = [
        Delivery(subscription_id=sub_id, event_id=event.id).model_dump(exclude={"id"})  # the dump carries the defaults
        for event in events
        for sub_id, patterns in sorted(subs)
        if sub_id in targets or (fan_out and any(matches(p, event.type) for p in patterns))
    ]  # fmt: skip
    if rows:
        session.execute(insert(Delivery), rows)
    return len(rows)


def present(event: Event) -> EventPublic:
    return EventPublic(
        id=event.id,
        message_id=event.message_id, type=event.type, subject_type=event.subject_type,
        subject_id=event.subject_id, occurred_at=event.occurred_at, data=event.data,
    )  # fmt: skip


def list_events(
    session: Session, *, type_pattern: str | None = None, subject_id: str | None = None,
    cursor: str | None = None, limit: int = 100,
) -> tuple[list[Event], str | None]:  # fmt: skip
    """Oldest first, so that a consumer can follow the stream with the cursor."""
    query = select(Event).where(*list_filter(type_pattern=type_pattern, subject_id=subject_id, cursor=cursor))
    return id_page(list(session.exec(query.order_by(col(Event.id)).limit(limit + 1))), limit)


def list_filter(
    *, type_pattern: str | None = None, subject_id: str | None = None, cursor: str | None = None
) -> list[ColumnElement[bool]]:
    """The listing's conditions and keyset (the events after the cursor's), shared with the read model."""
    clauses = [col(Event.id) > (decode_id_cursor(cursor) or 0)]
    if type_pattern is not None:
        if "*" in type_pattern:
            clauses.append(col(Event.type).like(type_pattern.replace("*", "%")))
        else:
            clauses.append(col(Event.type) == type_pattern)
    if subject_id is not None:
        clauses.append(col(Event.subject_id) == subject_id)
    return clauses
