"""The read model of a subscription's delivery log: a page of GET /api/v1/webhooks/{id}/deliveries, read with one
statement (the subscription, the page of deliveries with their event types, each delivery's attempts as a JSON
sub-select) into plain data and serialised once to JSON bytes, exactly as the route wrote Page[DeliveryPublic].

service.list_deliveries over the ORM, dumped as the route did (JSON mode, response_excerpt left out for keys
below admin, Starlette's JSONResponse), is the reference this must match byte for byte
(tests/webhooks/test_reads.py); the response model stays the documented schema. Writes never come here."""

from functools import cache
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, Text, cast, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlmodel import Session

from riskops.db import storable, table_of, utc_from_json
from riskops.errors import NotFound, Unprocessable
from riskops.events.models import Delivery, DeliveryStatus, Event, WebhookSubscription, message_id
from riskops.pagination import id_page
from riskops.webhooks import service
from riskops.webhooks.models import DeliveryAttempt

_SUBSCRIPTION = table_of(WebhookSubscription)
_DELIVERY = table_of(Delivery)
_EVENT = table_of(Event)
_ATTEMPT = table_of(DeliveryAttempt)

# The delivery's columns, in the order read_page unpacks them.
_COLUMNS = (
    "id", "event_id", "status", "attempts", "next_attempt_at", "last_status_code", "last_error", "delivered_at",
)  # fmt: skip

# The route wrote this page with Starlette's JSONResponse (json.dumps), the datetimes as pydantic's JSON mode
# writes them (...Z, as orjson does with OPT_UTC_Z).
_JSON_OPTIONS = orjson.OPT_UTC_Z


def read_page(
    session: Session, sub_id: int, *, cursor: str | None = None, limit: int = 50, excerpts: bool = False
) -> bytes:
    """A page of the delivery log as Page[DeliveryPublic] JSON, newest first, each delivery with every attempt;
    `excerpts`: with the start of the receiver's answers (admin keys only). The 404 and 422 answers, and the
    keyset and next_cursor, are service.list_deliveries' (after service.get_subscription)."""
    try:
        older = service.before_cursor(cursor)
    except Unprocessable:
        service.get_subscription(session, sub_id)  # a missing subscription is a 404 before a bad cursor is a 422
        raise
    if not storable(sub_id):
        raise NotFound(f"Webhook subscription {sub_id} does not exist.")
    page = (
        select(_DELIVERY.c.id, _DELIVERY.c.subscription_id)
        .where(_DELIVERY.c.subscription_id == sub_id, *older)
        .order_by(_DELIVERY.c.id.desc())
        .limit(limit + 1)
        .subquery("page")
    )
    connection = session.connection()
    dialect = connection.dialect.name
    # The subscription outer-joined to its page: one row of NULLs for an empty page, no row for no subscription.
    joined = (
        _SUBSCRIPTION.outerjoin(page, page.c.subscription_id == _SUBSCRIPTION.c.id)
        .outerjoin(_DELIVERY, _DELIVERY.c.id == page.c.id)
        .outerjoin(_EVENT, _EVENT.c.id == _DELIVERY.c.event_id)
    )
    statement = _with_attempts(dialect, excerpts).select_from(joined).where(_SUBSCRIPTION.c.id == sub_id)
    found = connection.execute(statement.order_by(_DELIVERY.c.id.desc())).all()
    if not found:
        raise NotFound(f"Webhook subscription {sub_id} does not exist.")
    rows, following = id_page([row for row in found if row.id is not None], limit)
    ordered = dialect == "postgresql"
    items = [
        {
            "id": delivery_id,
            "event_id": event_id,
            "event_type": event_type,
            "message_id": message_id(event_id),
            "status": status,
            "attempts": attempts,
            "next_attempt_at": next_attempt_at if status == DeliveryStatus.pending else None,
            "last_status_code": last_status_code,
            "last_error": last_error,
            "delivered_at": delivered_at,
            "attempt_log": _attempts(attempts_json, ordered, excerpts),
        }
        for (
            delivery_id, event_id, status, attempts, next_attempt_at, last_status_code, last_error, delivered_at,
            event_type, attempts_json,
        ) in rows
    ]  # fmt: skip
    return orjson.dumps({"items": items, "next_cursor": following}, option=_JSON_OPTIONS)


@cache
def _with_attempts(dialect: str, excerpts: bool) -> Select[Any]:
    """The delivery's columns, its event's type, and its attempts as JSON text, a correlated sub-select. Built once
    per database and audience: building a statement costs more than running it."""
    latency: ColumnElement[Any] = _ATTEMPT.c.latency_ms
    if dialect == "sqlite":  # SQLite's JSON keeps 15 digits of a float: as text, 17 give it back exactly
        latency = func.printf("%!.17g", latency)
    attempt = [_ATTEMPT.c.id, _ATTEMPT.c.attempted_at, _ATTEMPT.c.status_code, latency, _ATTEMPT.c.error]
    if excerpts:  # the receiver's answers are read only for those who may see them
        attempt.append(_ATTEMPT.c.response_excerpt)
    aggregate: ColumnElement[Any]
    if dialect == "postgresql":
        # Cast to text: orjson parses it faster than the driver's json loader would.
        aggregate = cast(func.json_agg(aggregate_order_by(func.json_build_array(*attempt), _ATTEMPT.c.id)), Text)
    else:
        aggregate = func.json_group_array(func.json_array(*attempt))
    attempts = select(aggregate).where(_ATTEMPT.c.delivery_id == _DELIVERY.c.id).scalar_subquery()
    return select(*(_DELIVERY.c[name] for name in _COLUMNS), _EVENT.c.type, attempts)


def _attempts(attempts_json: str | None, ordered: bool, excerpts: bool) -> list[dict[str, Any]]:
    """AttemptPublic's fields, oldest first, response_excerpt only with `excerpts` (the route's exclude)."""
    if attempts_json is None:  # PostgreSQL aggregates no rows to NULL
        return []
    rows: list[list[Any]] = orjson.loads(attempts_json)
    if not ordered:
        # SQLite before 3.44 has no ORDER BY inside an aggregate: these few rows are sorted here, by id.
        rows.sort(key=lambda attempt: attempt[0])
    log = []
    for _, attempted_at, status_code, latency_ms, error, *excerpt in rows:
        attempt = {
            "attempted_at": utc_from_json(attempted_at),
            "status_code": status_code,
            "latency_ms": _latency(float(latency_ms)),
            "error": error,
        }
        if excerpts:
            attempt["response_excerpt"] = excerpt[0]
        log.append(attempt)
    return log


def _latency(value: float) -> float | orjson.Fragment:
    """json.dumps writes a float as repr() does; orjson agrees but for 1e-9 <= |x| < 1e-4 (0.00001, not 1e-05)."""
    return orjson.Fragment(repr(value)) if 0 < abs(value) < 1e-4 else value
