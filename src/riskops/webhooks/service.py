"""Subscriptions, and delivery of events to them: signed, retried on a schedule, never to forbidden addresses."""

import json
import random
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import insert
from sqlmodel import Session, col, delete, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import Database, get_row, storable
from riskops.errors import Conflict, NotFound, Unprocessable, field_error
from riskops.events.models import Event
from riskops.events.service import emit, matches
from riskops.pagination import decode_id_cursor, id_page
from riskops.webhooks import network, signing
from riskops.webhooks.models import (
    AttemptPublic,
    Delivery,
    DeliveryAttempt,
    DeliveryPublic,
    DeliveryStatus,
    PayloadFormat,
    SubscriptionCreate,
    SubscriptionStatus,
    SubscriptionUpdate,
    WebhookSubscription,
)

# Wait before attempt 2, 3, ...: about a day in all. Attempt 8 is the last.
RETRY_SCHEDULE = (
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), timedelta(hours=10), timedelta(hours=10),
)  # fmt: skip
MAX_RETRY_AFTER = timedelta(hours=24)
EXCERPT_BYTES = 1024

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
    session.exec(delete(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_(deliveries)))
    session.exec(delete(Delivery).where(col(Delivery.subscription_id) == sub.id))
    _audit(session, sub, "deleted", who, {"url": {"old": sub.url, "new": None}})
    session.delete(sub)


def _audit(session: Session, sub: WebhookSubscription, action: str, who: Principal, changes: dict[str, Any]) -> None:
    audit.service.record(
        session, entity_type="webhook", entity_id=sub.id, action=action, actor=who.name, changes=changes
    )


# ---- queueing ----


def enqueue(session: Session, event: Event, targets: Collection[int] = (), *, fan_out: bool = True) -> int:
    """A delivery per subscription that wants this event (by type) or is named in `targets`."""
    return enqueue_many(session, [event], targets, fan_out=fan_out)


def enqueue_many(
    session: Session, events: Sequence[Event], targets: Collection[int] = (), *, fan_out: bool = True
) -> int:
    """The deliveries of several stored events, with one look at the subscriptions and one insert."""
    subs = session.exec(
        select(WebhookSubscription.id, WebhookSubscription.event_types).where(
            col(WebhookSubscription.status) != SubscriptionStatus.disabled
        )
    ).all()
    rows = [
        Delivery(subscription_id=sub_id, event_id=event.id).model_dump(exclude={"id"})  # type: ignore[arg-type]  # stored rows have ids; the dump carries the defaults
        for event in events
        for sub_id, patterns in sorted(subs)
        if sub_id in targets or (fan_out and any(matches(p, event.type) for p in patterns))
    ]  # fmt: skip
    if rows:
        session.execute(insert(Delivery), rows)
    return len(rows)


def send_test(session: Session, sub: WebhookSubscription) -> Event:
    if sub.status == SubscriptionStatus.disabled:
        raise Conflict(f"Webhook subscription {sub.id} is disabled ({sub.disabled_reason}); resume it first.")
    return emit(
        session, "webhook.test", "webhook", str(sub.id), {"message": "ping from riskops", "subscription": sub.id},
        targets={sub.id}, fan_out=False,  # type: ignore[arg-type]
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


# ---- sending ----


@dataclass(frozen=True)
class Job:
    """What one attempt needs, read while claiming, so no transaction stays open during the HTTP call."""

    delivery_id: int
    lease_until: datetime
    url: str
    secrets: list[str]
    format: PayloadFormat
    message_id: str
    event_type: str
    body: bytes


def claim_due(database: Database, limit: int, lease: timedelta) -> list[Job]:
    """Take up to `limit` due deliveries for `lease`; several senders never take the same one."""
    now = utcnow()
    with database.write() as session:
        due = (
            select(Delivery.id)
            .join(WebhookSubscription, col(WebhookSubscription.id) == col(Delivery.subscription_id))
            .where(
                Delivery.status == DeliveryStatus.pending,
                col(Delivery.next_attempt_at) <= now,
                (col(Delivery.lease_until).is_(None)) | (col(Delivery.lease_until) < now),
                WebhookSubscription.status == SubscriptionStatus.active,
            )
            .order_by(col(Delivery.next_attempt_at))
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=Delivery)
        ids = list(session.exec(due))
        jobs = []
        for delivery in session.exec(select(Delivery).where(col(Delivery.id).in_(ids))):
            delivery.lease_until = now + lease
            session.add(delivery)
            sub = session.get(WebhookSubscription, delivery.subscription_id)
            event = session.get(Event, delivery.event_id)
            assert sub is not None and event is not None  # foreign keys
            keys = [sub.secret] + (
                [sub.previous_secret] if sub.previous_secret and (sub.previous_secret_expires_at or now) > now else []
            )
            body = payload(event, sub.format)
            jobs.append(
                Job(
                    delivery_id=delivery.id, lease_until=delivery.lease_until, url=sub.url, secrets=keys,  # type: ignore[arg-type]
                    format=sub.format, message_id=event.message_id, event_type=event.type, body=body,
                )
            )  # fmt: skip
        return jobs


def payload(event: Event, fmt: PayloadFormat) -> bytes:
    if fmt == PayloadFormat.slack:
        title = event.data.get("title") or event.data.get("message") or ""
        text = f"*{event.type}* {event.subject_id}" + (f": {title}" if title else "")
        return json.dumps({"text": text}).encode()
    body = {"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": event.data}
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: float
    error: str | None
    excerpt: str | None
    retry_after: timedelta | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send(client: httpx.Client, job: Job, rules: network.Rules) -> Outcome:
    """One POST, to the address checked at connect time; redirects are not followed, the answer is read capped."""
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 2)

    try:
        host, host_header, ip = network.resolve(job.url, rules)
    except network.BlockedDestination as exc:
        return Outcome(None, elapsed(), f"blocked: {exc}"[:500], None)
    timestamp = int(time.time())  # the receiver checks it against its own wall clock (replay protection)
    headers = {
        "content-type": "application/json",
        "user-agent": "riskops-webhooks/1",
        "host": host_header,
        "webhook-id": job.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(job.secrets, job.message_id, timestamp, job.body),
    }
    try:
        request = client.build_request(
            "POST", network.pinned_url(job.url, ip), content=job.body, headers=headers,
            extensions={"sni_hostname": host},
        )  # fmt: skip
        response = client.send(request, stream=True)
        try:
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT_BYTES:
                    break
        finally:
            response.close()
    except httpx.HTTPError as exc:
        return Outcome(None, elapsed(), f"{type(exc).__name__}: {exc}"[:500], None)
    return Outcome(
        response.status_code, elapsed(), None, excerpt[:EXCERPT_BYTES].decode("utf-8", "replace"),
        retry_after=_retry_after(response.headers.get("retry-after")),
    )  # fmt: skip


def _retry_after(value: str | None) -> timedelta | None:
    if not value:
        return None
    try:
        wait = timedelta(seconds=int(value))
    except ValueError:
        try:
            wait = parsedate_to_datetime(value) - utcnow()
        except (TypeError, ValueError):
            return None
    return min(max(wait, timedelta(0)), MAX_RETRY_AFTER)


def record(database: Database, results: list[tuple[Job, Outcome]], settings: Settings) -> list[DeliveryStatus]:
    """Log a batch of attempts and decide what comes next for each, in one transaction."""
    with database.write() as session:
        return [_record_one(session, job, outcome, settings) for job, outcome in results]


def _record_one(session: Session, job: Job, outcome: Outcome, settings: Settings) -> DeliveryStatus:
    now = utcnow()
    delivery = session.get(Delivery, job.delivery_id, with_for_update=True)
    if delivery is None:  # its subscription was deleted meanwhile
        return DeliveryStatus.failed
    sub = session.get(WebhookSubscription, delivery.subscription_id, with_for_update=True)
    assert sub is not None
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id, attempted_at=now, status_code=outcome.status_code,  # type: ignore[arg-type]
            latency_ms=outcome.latency_ms, error=outcome.error, response_excerpt=outcome.excerpt,
        )
    )  # fmt: skip
    delivery.attempts += 1
    delivery.lease_until = None
    delivery.last_status_code, delivery.last_error = outcome.status_code, outcome.error
    if outcome.ok:
        delivery.status, delivery.delivered_at = DeliveryStatus.succeeded, now
        sub.failing_since = None
    elif outcome.status_code == 410:
        delivery.status = DeliveryStatus.failed
        _disable(session, sub, "the receiver answered 410 Gone")
    else:
        sub.failing_since = sub.failing_since or now
        if delivery.attempts > len(RETRY_SCHEDULE):
            delivery.status = DeliveryStatus.failed
        else:
            wait = RETRY_SCHEDULE[delivery.attempts - 1] * random.uniform(0.9, 1.1)
            delivery.next_attempt_at = now + max(wait, outcome.retry_after or timedelta(0))
        if now - sub.failing_since >= timedelta(days=settings.webhook_disable_after_days):
            _disable(session, sub, f"failing since {sub.failing_since.isoformat()}")
    session.add(delivery)
    session.add(sub)
    return delivery.status


def _disable(session: Session, sub: WebhookSubscription, reason: str) -> None:
    if sub.status == SubscriptionStatus.disabled:
        return
    sub.status, sub.disabled_reason = SubscriptionStatus.disabled, reason
    emit(
        session, "webhook.disabled", "webhook", str(sub.id), {"subscription": sub.id, "url": sub.url, "reason": reason}
    )


def list_deliveries(
    session: Session, sub: WebhookSubscription, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[DeliveryPublic], str | None]:
    """Newest first, each with its attempts."""
    query = select(Delivery).where(Delivery.subscription_id == sub.id)
    before = decode_id_cursor(cursor)
    if before is not None:
        query = query.where(col(Delivery.id) < before)
    rows, next_cursor = id_page(list(session.exec(query.order_by(col(Delivery.id).desc()).limit(limit + 1))), limit)
    attempts: dict[int, list[AttemptPublic]] = {r.id: [] for r in rows}  # type: ignore[misc]
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
            attempt_log=attempts[r.id],  # type: ignore[index]
        )
        for r in rows
    ], next_cursor  # fmt: skip
