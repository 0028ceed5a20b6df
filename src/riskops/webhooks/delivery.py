"""The worker side of webhooks: claim due deliveries, send them signed to checked addresses, record the
outcome and plan the retry, or disable a subscription that keeps failing.

Claims run ahead of the senders and outcomes are recorded in batches, a few statements each, so the senders
never wait for the database or for the slowest request of a round. One attempt (Job, send, Outcome) lives with
the address checks in network.py and is re-exported here.
"""

import json
import logging
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import JSON, Row, Table, Text, bindparam, cast, column, func, insert, select, update
from sqlalchemy.sql.expression import ColumnElement, FromClause, Select, TableValuedAlias, Update
from sqlmodel import Session

from riskops import retry
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import Database, UTCDateTime, table_of
from riskops.events.models import (
    Delivery,
    DeliveryStatus,
    Event,
    PayloadFormat,
    SubscriptionStatus,
    WebhookSubscription,
)
from riskops.events.service import emit
from riskops.webhooks import network
from riskops.webhooks.models import DeliveryAttempt
from riskops.webhooks.network import Job as Job
from riskops.webhooks.network import Outcome as Outcome
from riskops.webhooks.network import send as send

# Rounds of the concurrency: at most WINDOW_ROUNDS claimed and not yet recorded; a step records STEP_ROUNDS
# finished and claims as many more, while the senders work through the rounds still queued.
WINDOW_ROUNDS, STEP_ROUNDS = 6, 3

log = logging.getLogger(__name__)

Sent = tuple[Job, Outcome]


def deliver_due(database: Database, settings: Settings, client: httpx.Client, pool: ThreadPoolExecutor) -> int:
    """Send due webhooks through `pool` until a claim finds none due; returns how many were sent.

    Each step records what has finished and claims as much again, in one transaction, while the senders work
    through what is queued: no sender waits for the database or for the slowest of a batch."""
    step, window = settings.webhook_concurrency * STEP_ROUNDS, settings.webhook_concurrency * WINDOW_ROUNDS
    # Long enough for the last of a window to wait its turn, time out, and wait for its step to record it:
    # a live sender never loses its claim.
    lease = timedelta(seconds=settings.webhook_timeout_seconds * (WINDOW_ROUNDS + STEP_ROUNDS + 1))
    resolver = network.Resolver(network.destinations(settings))
    finished = _Finished()
    done: list[Sent] = []
    in_flight, sent, claiming = 0, 0, True
    while True:
        results, done = (done, []) if done and (len(done) >= step or not in_flight) else ([], done)
        outstanding = in_flight + len(done)
        # Refill once a step is free; and once nothing is left, look again: what was recorded may have queued
        # more (a webhook.disabled), and whatever is due by then goes out in this call.
        asked = window - outstanding if (claiming and outstanding <= window - step) or not outstanding else 0
        if results or asked:
            _, jobs = record_and_claim(database, results, asked, lease, settings=settings)
            sent += len(results)
            claiming = claiming if not asked else len(jobs) == asked
            for job in jobs:
                pool.submit(_attempt, client, job, resolver).add_done_callback(finished.put)
            in_flight += len(jobs)
        if not in_flight:
            return sent
        arrived = finished.take(min(in_flight, step - len(done)))
        done += arrived
        in_flight -= len(arrived)


class _Finished:
    """Attempts as the senders finish them; the loop is woken once enough are in, not at every one."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._futures: list[Future[Sent]] = []
        self._wanted = 1

    def put(self, future: Future[Sent]) -> None:
        with self._ready:
            self._futures.append(future)
            if len(self._futures) >= self._wanted:
                self._ready.notify()

    def take(self, wanted: int) -> list[Sent]:
        """At least `wanted` finished attempts: all that are in."""
        with self._ready:
            self._wanted = wanted
            self._ready.wait_for(lambda: len(self._futures) >= wanted)
            futures, self._futures = self._futures, []
        return [future.result() for future in futures]


def _attempt(client: httpx.Client, job: Job, resolver: network.Resolver) -> Sent:
    try:
        return job, send(client, job, resolver)
    except Exception as exc:  # one odd delivery must not stop the rest: it fails and is retried on the schedule
        log.exception("sending delivery %s failed unexpectedly", job.delivery_id)
        return job, Outcome(None, 0.0, f"{type(exc).__name__}: {exc}"[:500], None)


def claim_due(database: Database, limit: int, lease: timedelta) -> list[Job]:
    """Take up to `limit` due deliveries for `lease`; several senders never take the same one."""
    return record_and_claim(database, [], limit, lease, settings=None)[1]


def record(database: Database, results: list[Sent], settings: Settings) -> list[DeliveryStatus]:
    """Log a batch of attempts and decide what comes next for each, in one transaction."""
    return record_and_claim(database, results, 0, timedelta(0), settings=settings)[0]


def record_and_claim(
    database: Database, results: list[Sent], limit: int, lease: timedelta, *, settings: Settings | None
) -> tuple[list[DeliveryStatus], list[Job]]:
    """Record `results`, then claim up to `limit` due deliveries for `lease`: one transaction, so one commit
    (and on SQLite one turn of the write lock) per step of deliver_due."""
    now = utcnow()
    lease_until = now + lease
    with database.write() as session:
        statuses = _record(session, results, now, settings) if results else []
        rows = _claim(session, limit, now, lease_until) if limit else []
    jobs = []
    for row in rows:
        fmt = PayloadFormat(row.format)
        signs_too = row.previous_secret and (row.previous_secret_expires_at or now) > now
        jobs.append(
            Job(
                delivery_id=row.id, lease_until=lease_until, url=row.url,
                secrets=[row.secret, row.previous_secret] if signs_too else [row.secret], format=fmt,
                message_id=f"evt_{row.event_id}", event_type=row.type,
                body=_body(row.type, row.subject_id, row.occurred_at, row.data, fmt),
            )
        )  # fmt: skip
    return statuses, jobs


def _claim(session: Session, limit: int, now: datetime, lease_until: datetime) -> Sequence[Row[*tuple[Any, ...]]]:
    """The due deliveries taken, with their events and subscriptions: on PostgreSQL one statement (an UPDATE over
    rows locked FOR UPDATE SKIP LOCKED, joined as it returns); on SQLite, which has one writer at a time and no
    UPDATE inside WITH, an UPDATE ... RETURNING and a read."""
    conn = session.connection()
    params = {"b_now": now, "b_limit": limit, "b_lease_until": lease_until}
    if conn.dialect.name == "postgresql":
        return conn.execute(_CLAIM_POSTGRESQL, params).all()
    ids = conn.execute(_CLAIM_SQLITE, params).scalars().all()
    return conn.execute(_JOBS, {"b_ids": ids}).all() if ids else []


_DELIVERY, _EVENT, _SUB = table_of(Delivery), table_of(Event), table_of(WebhookSubscription)


def _taking(*, locked: bool) -> Update:
    """UPDATE ... RETURNING that leases the due deliveries (the b_ parameters of _claim)."""
    due = (
        select(_DELIVERY.c.id)
        .join(_SUB, _SUB.c.id == _DELIVERY.c.subscription_id)
        .where(
            _DELIVERY.c.status == DeliveryStatus.pending,
            _DELIVERY.c.next_attempt_at <= bindparam("b_now", type_=UTCDateTime),
            _DELIVERY.c.lease_until.is_(None) | (_DELIVERY.c.lease_until < bindparam("b_now", type_=UTCDateTime)),
            _SUB.c.status == SubscriptionStatus.active,
        )
        .order_by(_DELIVERY.c.next_attempt_at)
        .limit(bindparam("b_limit"))
    )
    if locked:
        due = due.with_for_update(skip_locked=True, of=_DELIVERY)
    taken = due.cte("due").prefix_with("MATERIALIZED")  # locked and limited once, whatever the plan
    return (
        update(_DELIVERY)
        .where(_DELIVERY.c.id.in_(select(taken.c.id)))
        .values(lease_until=bindparam("b_lease_until", type_=UTCDateTime))
        .returning(_DELIVERY.c.id, _DELIVERY.c.event_id, _DELIVERY.c.subscription_id, _DELIVERY.c.next_attempt_at)
    )


def _jobs(delivery: FromClause) -> Select[*tuple[Any, ...]]:
    """What a Job needs, for the deliveries in `delivery` (the table, or the claim's RETURNING)."""
    return (
        select(
            delivery.c.id, delivery.c.event_id, _EVENT.c.type, _EVENT.c.subject_id, _EVENT.c.occurred_at,
            _EVENT.c.data, _SUB.c.url, _SUB.c.format, _SUB.c.secret, _SUB.c.previous_secret,
            _SUB.c.previous_secret_expires_at,
        )
        .join(_EVENT, _EVENT.c.id == delivery.c.event_id)
        .join(_SUB, _SUB.c.id == delivery.c.subscription_id)
        .order_by(delivery.c.next_attempt_at, delivery.c.id)
    )  # fmt: skip


_CLAIM_SQLITE = _taking(locked=False)
_JOBS = _jobs(_DELIVERY).where(_DELIVERY.c.id.in_(bindparam("b_ids", expanding=True)))
_CLAIM_POSTGRESQL = _jobs(_taking(locked=True).cte("claimed"))


def payload(event: Event, fmt: PayloadFormat) -> bytes:
    return _body(event.type, event.subject_id, event.occurred_at, event.data, fmt)


def _body(event_type: str, subject_id: str, occurred_at: datetime, data: dict[str, Any], fmt: PayloadFormat) -> bytes:
    if fmt == PayloadFormat.slack:
        title = data.get("title") or data.get("message") or ""
        text = f"*{event_type}* {subject_id}" + (f": {title}" if title else "")
        return json.dumps({"text": text}).encode()
    body = {"type": event_type, "timestamp": occurred_at.isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":")).encode()


_CURRENT = (
    select(_DELIVERY.c.id, _DELIVERY.c.attempts, _DELIVERY.c.subscription_id, _SUB.c.status, _SUB.c.failing_since)
    .join(_SUB, _SUB.c.id == _DELIVERY.c.subscription_id)
    .where(_DELIVERY.c.id.in_(bindparam("b_ids", expanding=True)))
    .order_by(_DELIVERY.c.id)
    .with_for_update()  # the deliveries and their subscriptions, until the outcomes are written
)
# What _record writes: per attempted delivery these columns of it, and an attempt row.
_OUTCOME = ("id", "attempts", "status", "last_status_code", "last_error", "delivered_at", "next_attempt_at")
_ATTEMPT_TABLE = table_of(DeliveryAttempt)
_ATTEMPT = tuple(c.name for c in _ATTEMPT_TABLE.c if c.name != "id")


def _outcomes_written(value: Callable[[str], ColumnElement[Any]]) -> Update:
    return (
        update(_DELIVERY)
        .where(_DELIVERY.c.id == value("id"))
        .values(
            {name: value(name) for name in _OUTCOME[1:5]}
            | {
                "lease_until": None,
                # None keeps what is there: a failure leaves delivered_at alone, a success next_attempt_at.
                "delivered_at": func.coalesce(value("delivered_at"), _DELIVERY.c.delivered_at),
                "next_attempt_at": func.coalesce(value("next_attempt_at"), _DELIVERY.c.next_attempt_at),
            }
        )
    )  # fmt: skip


def _recordset(table: Table, names: tuple[str, ...], param: str) -> TableValuedAlias:
    """Rows given as one JSON array of objects (the parameter `param`) as a table with `names` typed as in `table`."""
    rows = func.json_to_recordset(cast(bindparam(param, type_=Text), JSON))
    return rows.table_valued(*[column(n, table.c[n].type) for n in names]).render_derived(with_types=True)


# SQLite runs executemany in process: a row of parameters per delivery.
_RECORD = _outcomes_written(lambda name: bindparam("b_" + name, type_=_DELIVERY.c[name].type))
_LOG = insert(_ATTEMPT_TABLE)
# PostgreSQL takes all rows as JSON in one statement (the attempts inserted in its WITH): one round trip, and
# no per-row work in the driver.
_OUTCOMES_GIVEN = _recordset(_DELIVERY, _OUTCOME, "b_outcomes")
_ATTEMPTS_GIVEN = _recordset(_ATTEMPT_TABLE, _ATTEMPT, "b_attempts")
_LOG_POSTGRESQL = _LOG.from_select(_ATTEMPT, select(*[_ATTEMPTS_GIVEN.c[name] for name in _ATTEMPT]))
_RECORD_POSTGRESQL = _outcomes_written(lambda name: _OUTCOMES_GIVEN.c[name]).add_cte(_LOG_POSTGRESQL.cte("log"))


def _json(rows: Iterable[dict[str, Any]]) -> str:
    """Rows for a _recordset: times in ISO 8601, with their offset."""
    return json.dumps(list(rows), default=datetime.isoformat)


@dataclass
class _Standing:
    """A subscription's failure state while a batch is recorded; written back only if it changed."""

    status: str
    failing_since: datetime | None
    disable_because: str | None = None
    changed: bool = False


def _record(session: Session, results: list[Sent], now: datetime, settings: Settings | None) -> list[DeliveryStatus]:
    """One read of the deliveries with their subscriptions (locked), one UPDATE for all deliveries, one INSERT for
    all attempts; a subscription is written only when its state changes."""
    assert settings is not None, "recording needs the settings"
    conn = session.connection()
    attempts, standing = {}, {}
    for row in conn.execute(_CURRENT, {"b_ids": sorted({job.delivery_id for job, _ in results})}):
        attempts[row.id] = (row.subscription_id, row.attempts)
        standing[row.subscription_id] = _Standing(row.status, row.failing_since)
    statuses, log, changes = [], [], dict[int, dict[str, Any]]()  # a delivery twice in a batch: its last state
    for job, outcome in results:
        if job.delivery_id not in attempts:  # its subscription was deleted meanwhile
            statuses.append(DeliveryStatus.failed)
            continue
        sub_id, tries = attempts[job.delivery_id]
        attempts[job.delivery_id] = (sub_id, tries + 1)
        change = _next_step(standing[sub_id], tries + 1, outcome, now, settings)
        changes[job.delivery_id] = {"id": job.delivery_id, **change}
        statuses.append(change["status"])
        log.append(
            {
                "delivery_id": job.delivery_id, "attempted_at": now, "status_code": outcome.status_code,
                "latency_ms": outcome.latency_ms, "error": outcome.error, "response_excerpt": outcome.excerpt,
            }
        )  # fmt: skip
    if changes and conn.dialect.name == "postgresql":
        conn.execute(_RECORD_POSTGRESQL, {"b_outcomes": _json(changes.values()), "b_attempts": _json(log)})
    elif changes:
        conn.execute(_RECORD, [{"b_" + key: value for key, value in row.items()} for row in changes.values()])
        conn.execute(_LOG, log)
    for sub_id, state in standing.items():
        if state.changed:
            sub = session.get_one(WebhookSubscription, sub_id)
            sub.failing_since = state.failing_since
            session.add(sub)
            if state.disable_because:
                _disable(session, sub, state.disable_because)
    session.flush()  # what the claim after it must see: a disabled subscription, a webhook.disabled
    return statuses


def _next_step(sub: _Standing, attempts: int, outcome: Outcome, now: datetime, settings: Settings) -> dict[str, Any]:
    """The delivery's new state after its `attempts`-th attempt (its _OUTCOME columns), and its subscription's
    in `sub`."""
    change: dict[str, Any] = {
        "attempts": attempts, "status": DeliveryStatus.pending, "last_status_code": outcome.status_code,
        "last_error": outcome.error, "delivered_at": None, "next_attempt_at": None,
    }  # fmt: skip
    if outcome.ok:
        change["status"], change["delivered_at"] = DeliveryStatus.succeeded, now
        if sub.failing_since is not None:
            sub.failing_since, sub.changed = None, True
        return change
    if outcome.status_code == 410:
        change["status"] = DeliveryStatus.failed
        _mark_disabled(sub, "the receiver answered 410 Gone")
        return change
    if sub.failing_since is None:
        sub.failing_since, sub.changed = now, True
    wait = retry.wait_after(attempts)
    if wait is None:
        change["status"] = DeliveryStatus.failed
    else:
        wait *= random.uniform(0.9, 1.1)  # spread the retries of a receiver that was down for everyone
        change["next_attempt_at"] = now + max(wait, outcome.retry_after or timedelta(0))
    if now - sub.failing_since >= timedelta(days=settings.webhook_disable_after_days):
        _mark_disabled(sub, f"failing since {sub.failing_since.isoformat()}")
    return change


def _mark_disabled(sub: _Standing, reason: str) -> None:
    if sub.status != SubscriptionStatus.disabled:
        sub.status, sub.disable_because, sub.changed = SubscriptionStatus.disabled, reason, True


def _disable(session: Session, sub: WebhookSubscription, reason: str) -> None:
    if sub.status == SubscriptionStatus.disabled:
        return
    sub.status, sub.disabled_reason = SubscriptionStatus.disabled, reason
    session.add(sub)
    emit(
        session, "webhook.disabled", "webhook", str(sub.id), {"subscription": sub.id, "url": sub.url, "reason": reason}
    )
