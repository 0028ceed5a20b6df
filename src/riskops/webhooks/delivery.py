"""The worker side of webhooks: claim due deliveries, send them signed to checked addresses, record the
outcome and plan the retry, or disable a subscription that keeps failing."""

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlmodel import Session, col, select

from riskops import retry
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import Database
from riskops.events.models import (
    Delivery,
    DeliveryStatus,
    Event,
    PayloadFormat,
    SubscriptionStatus,
    WebhookSubscription,
)
from riskops.events.service import emit
from riskops.webhooks import network, signing
from riskops.webhooks.models import DeliveryAttempt

MAX_RETRY_AFTER = timedelta(hours=24)
EXCERPT_BYTES = 1024


def deliver_due(database: Database, settings: Settings, client: httpx.Client, pool: ThreadPoolExecutor) -> int:
    """Send due webhooks concurrently, batch after batch, until none are due."""
    batch = settings.webhook_concurrency * 4
    # Long enough for every round of the batch to time out: a live sender never loses its claim.
    lease = timedelta(seconds=settings.webhook_timeout_seconds * (batch // settings.webhook_concurrency + 1))
    rules = network.destinations(settings)
    sent = 0
    while jobs := claim_due(database, batch, lease):
        outcomes = list(pool.map(lambda job: (job, send(client, job, rules)), jobs))
        record(database, outcomes, settings)
        sent += len(jobs)
    return sent


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
                    delivery_id=delivery.id, lease_until=delivery.lease_until, url=sub.url, secrets=keys,
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
            delivery_id=delivery.id, attempted_at=now, status_code=outcome.status_code,
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
        wait = retry.wait_after(delivery.attempts)
        if wait is None:
            delivery.status = DeliveryStatus.failed
        else:
            wait *= random.uniform(0.9, 1.1)  # spread the retries of a receiver that was down for everyone
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
