"""The outbox: events are rows added to the caller's transaction, then fanned out to subscriptions."""

import fnmatch
from collections.abc import Collection
from typing import Any

from sqlmodel import Session, col, select

from riskops.events.models import Event, EventPublic
from riskops.pagination import decode_id_cursor, id_page

# Every type the service emits; subscriptions may name these or patterns over them (incident.*).
EVENT_TYPES = (
    "risk.created", "risk.updated", "risk.assessed", "risk.level_changed", "risk.closed", "risk.reopened",
    "risk.review_due", "risk.review_overdue", "risk.acceptance_expiring", "risk.acceptance_expired",
    "risk.materialised", "risk.acceptance_voided",
    "incident.declared", "incident.acknowledged", "incident.escalated", "incident.state_changed",
    "incident.breach_imminent", "incident.breached", "incident.mtpd_imminent", "incident.mtpd_breached",
    "playbook.activated", "step.due", "step.overdue", "step.completed",
    "communication.due", "communication.overdue",
    "review.quarter_started", "review.requested", "webhook.disabled", "webhook.test",
)  # fmt: skip


def matches(pattern: str, event_type: str) -> bool:
    return fnmatch.fnmatchcase(event_type, pattern)


def emit(
    session: Session, event_type: str, subject_type: str, subject_id: str, data: dict[str, Any],
    *, targets: Collection[int] = (), fan_out: bool = True,
) -> Event:  # fmt: skip
    """Record an event and queue its deliveries, in the caller's transaction: both commit or neither.

    Deliveries go to the subscriptions whose patterns match (unless fan_out is off) and to `targets`.
    """
    from riskops.webhooks import service as webhooks  # the delivery side depends on events, not the reverse

    event = Event(type=event_type, subject_type=subject_type, subject_id=subject_id, data=data)
    session.add(event)
    session.flush()
    webhooks.enqueue(session, event, targets, fan_out=fan_out)
    return event


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
    query = select(Event).where(col(Event.id) > (decode_id_cursor(cursor) or 0))
    if type_pattern is not None:
        if "*" in type_pattern:
            query = query.where(col(Event.type).like(type_pattern.replace("*", "%")))
        else:
            query = query.where(Event.type == type_pattern)
    if subject_id is not None:
        query = query.where(Event.subject_id == subject_id)
    return id_page(list(session.exec(query.order_by(col(Event.id)).limit(limit + 1))), limit)
