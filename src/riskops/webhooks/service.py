"""Subscription admin: who receives which events, where, signed with which secret; and the delivery log."""

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, delete, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.db import get_row, storable
from riskops.errors import Conflict, NotFound, Unprocessable, field_error
from riskops.events.models import Delivery, DeliveryStatus, Event, SubscriptionStatus, WebhookSubscription
from riskops.events.service import emit
from riskops.pagination import decode_id_cursor, id_page
from riskops.webhooks import network, signing
from riskops.webhooks.models import (
    AttemptPublic,
    DeliveryAttempt,
    DeliveryPublic,
    SubscriptionCreate,
    SubscriptionUpdate,
)

# ---- subscriptions ----


def check_destination(url: str, rules: network.Rules) -> None:
    try:
        network.resolve(url, rules)
    except network.BlockedDestination as exc:
        raise Unprocessable(f"Webhook URL refused: {exc}.", errors=[field_error(("body", "url"), str(exc))]) from exc


def create_subscription(
    session: Session, data: SubscriptionCreate, who: Principal, rules: network.Rules
) -> WebhookSubscription:
    check_destination(str(data.url), rules)
    sub = WebhookSubscription(
        url=str(data.url), description=data.description, event_types=data.event_types, format=data.format,
        secret=signing.new_secret(), created_by=who.name,
    )  # fmt: skip
    session.add(sub)
    session.flush()
    _audit(session, sub, "created", who, {"url": {"old": None, "new": sub.url}})
    return sub


def get_subscription(session: Session, sub_id: int, *, for_update: bool = False) -> WebhookSubscription:
    return get_row(session, WebhookSubscription, sub_id, "Webhook subscription", with_for_update=for_update)


def list_subscriptions(session: Session) -> list[WebhookSubscription]:
    return list(session.exec(select(WebhookSubscription).order_by(col(WebhookSubscription.id))))


def update_subscription(
    session: Session, sub: WebhookSubscription, data: SubscriptionUpdate, who: Principal, rules: network.Rules,
) -> WebhookSubscription:  # fmt: skip
    changes = {}
    for name in data.model_fields_set:
        value = getattr(data, name)
        if value is None:
            raise Unprocessable(f"{name} cannot be null.", errors=[field_error(("body", name), "cannot be null")])
        value = str(value) if name == "url" else value
        if name == "url":
            check_destination(value, rules)
        if getattr(sub, name) != value:
            changes[name] = {"old": getattr(sub, name), "new": value}
            setattr(sub, name, value)
    if changes:
        sub.updated_at = utcnow()
        session.add(sub)
        _audit(session, sub, "updated", who, changes)
    return sub


def set_status(session: Session, sub: WebhookSubscription, status: SubscriptionStatus, who: Principal) -> None:
    """Pause or resume (resuming also re-enables a disabled subscription and retries at once)."""
    if sub.status == status:
        raise Conflict(f"Webhook subscription {sub.id} is already {status}.")
    old, sub.status = sub.status, status
    if status == SubscriptionStatus.active:
        sub.disabled_reason, sub.failing_since = None, None
    sub.updated_at = utcnow()
    session.add(sub)
    _audit(session, sub, str(status), who, {"status": {"old": str(old), "new": str(status)}})


def rotate_secret(session: Session, sub: WebhookSubscription, grace: timedelta, who: Principal) -> str:
    """A new secret; the old one keeps signing beside it for `grace`, so receivers can switch without a gap."""
    sub.previous_secret, sub.secret = sub.secret, signing.new_secret()
    sub.previous_secret_expires_at = utcnow() + grace
    session.add(sub)
    _audit(
        session,
        sub,
        "secret.rotated",
        who,
        {"previous_secret_expires_at": {"old": None, "new": str(sub.previous_secret_expires_at)}},
    )
    return sub.secret


def delete_subscription(session: Session, sub: WebhookSubscription, who: Principal) -> None:
    deliveries = select(Delivery.id).where(Delivery.subscription_id == sub.id)
    # Locked in id order first, the order the worker locks them in to record outcomes: a DELETE would take them in
    # the table's order, and the two could each hold a delivery the other waits for.
    session.exec(deliveries.order_by(col(Delivery.id)).with_for_update()).all()
    session.exec(delete(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_(deliveries)))
    session.exec(delete(Delivery).where(col(Delivery.subscription_id) == sub.id))
    _audit(session, sub, "deleted", who, {"url": {"old": sub.url, "new": None}})
    session.delete(sub)


def _audit(session: Session, sub: WebhookSubscription, action: str, who: Principal, changes: dict[str, Any]) -> None:
    audit.service.record(
        session, entity_type="webhook", entity_id=sub.id, action=action, actor=who.name, changes=changes
    )


def send_test(session: Session, sub: WebhookSubscription) -> Event:
    if sub.status == SubscriptionStatus.disabled:
        raise Conflict(f"Webhook subscription {sub.id} is disabled ({sub.disabled_reason}); resume it first.")
    return emit(
        session, "webhook.test", "webhook", str(sub.id), {"message": "ping from riskops", "subscription": sub.id},
        targets={sub.id}, fan_out=False,
    )  # fmt: skip


def resend(session: Session, sub: WebhookSubscription, delivery_id: int) -> Delivery:
    delivery = session.get(Delivery, delivery_id, with_for_update=True) if storable(delivery_id) else None
    if delivery is None or delivery.subscription_id != sub.id:
        raise NotFound(f"Delivery {delivery_id} does not exist on subscription {sub.id}.")
    if delivery.status == DeliveryStatus.pending:
        raise Conflict(f"Delivery {delivery_id} is already queued.")
    delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.pending, 0, utcnow()
    delivery.lease_until = None
    session.add(delivery)
    return delivery


def list_deliveries(
    session: Session, sub: WebhookSubscription, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[DeliveryPublic], str | None]:
    """Newest first, each with its attempts."""
    query = select(Delivery).where(Delivery.subscription_id == sub.id, *before_cursor(cursor))
    rows, next_cursor = id_page(list(session.exec(query.order_by(col(Delivery.id).desc()).limit(limit + 1))), limit)
    attempts: dict[int, list[AttemptPublic]] = {r.id: [] for r in rows}
    for attempt in session.exec(
        select(DeliveryAttempt)
        .where(col(DeliveryAttempt.delivery_id).in_(list(attempts)))
        .order_by(col(DeliveryAttempt.id))
    ):
        attempts[attempt.delivery_id].append(AttemptPublic.model_validate(attempt))
    events = {e.id: e for e in session.exec(select(Event).where(col(Event.id).in_([r.event_id for r in rows])))}
    return [
        DeliveryPublic(
            id=r.id, event_id=r.event_id, event_type=events[r.event_id].type, message_id=events[r.event_id].message_id,
            status=r.status, attempts=r.attempts,
            next_attempt_at=r.next_attempt_at if r.status == DeliveryStatus.pending else None,
            last_status_code=r.last_status_code, last_error=r.last_error, delivered_at=r.delivered_at,
            attempt_log=attempts[r.id],
        )
        for r in rows
    ], next_cursor  # fmt: skip


def before_cursor(cursor: str | None) -> list[ColumnElement[bool]]:
    """The keyset of the newest-first delivery log: the deliveries older than the cursor's (none at first)."""
    before = decode_id_cursor(cursor)
    return [] if before is None else [col(Delivery.id) < before]
