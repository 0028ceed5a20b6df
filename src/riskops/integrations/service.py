"""Alerts from other systems: integrations and their tokens, and receiving what they send, each body applied
in a transaction of its own or kept as rejected."""

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.service import Principal, hash_secret
from riskops.config import Settings
from riskops.db import Database, get_row, storable
from riskops.errors import DomainError, InvalidBody, ProtocolError, Unauthorized, Unprocessable, field_error
from riskops.integrations import flows
from riskops.integrations.models import (
    Integration,
    IntegrationCreate,
    IntegrationKind,
    IntegrationPublic,
    PagerDutyEvent,
    ReceivedAlert,
    Route,
)
from riskops.integrations.redaction import masked_body
from riskops.integrations.signals import Signal, from_pagerduty
from riskops.pagination import decode_id_cursor, id_page
from riskops.webhooks import signing

ENDPOINTS = {
    IntegrationKind.alertmanager: "/api/v1/inbound/alertmanager",
    IntegrationKind.pagerduty: "/api/v1/inbound/pagerduty/v2/enqueue",
    IntegrationKind.generic: "/api/v1/inbound/generic",
}

# ---- integrations ----


def create(session: Session, data: IntegrationCreate, who: Principal) -> tuple[Integration, str]:
    for i, route in enumerate([*data.routes, data.default_route]):
        for j, matcher in enumerate(route.matchers):
            if matcher.op == "=~":
                try:
                    re.compile(matcher.value)
                except re.error as exc:
                    loc = (
                        ("body", "routes", i, "matchers", j, "value")
                        if i < len(data.routes)
                        else ("body", "default_route")
                    )
                    raise Unprocessable(
                        f"Invalid regular expression: {exc}.", errors=[field_error(loc, str(exc))]
                    ) from exc
    token = "rki_" + secrets.token_urlsafe(32)
    integration = Integration(
        name=data.name, kind=data.kind, token_hash=hash_secret(token), token_prefix=token[:10],
        signing_secret=signing.new_secret() if data.kind == IntegrationKind.generic else None,
        routes=[r.model_dump(mode="json") for r in data.routes],
        default_route=data.default_route.model_dump(mode="json"),
        created_by=who.name,
    )  # fmt: skip
    session.add(integration)
    session.flush()
    audit.service.record(
        session, entity_type="integration", entity_id=integration.id, action="created", actor=who.name,
        changes={"name": {"old": None, "new": data.name}, "kind": {"old": None, "new": str(data.kind)}},
    )  # fmt: skip
    return integration, token


def present(integration: Integration) -> IntegrationPublic:
    return IntegrationPublic(
        id=integration.id, name=integration.name, kind=integration.kind, token_prefix=integration.token_prefix,
        routes=[Route.model_validate(r) for r in integration.routes],
        default_route=Route.model_validate(integration.default_route), created_at=integration.created_at,
        endpoint=ENDPOINTS[integration.kind],
    )  # fmt: skip


def get(session: Session, integration_id: int) -> Integration:
    return get_row(session, Integration, integration_id, "Integration")


def list_integrations(session: Session) -> list[Integration]:
    return list(session.exec(select(Integration).order_by(col(Integration.id))))


def received(
    session: Session, integration: Integration, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[ReceivedAlert], str | None]:
    query = select(ReceivedAlert).where(ReceivedAlert.integration_id == integration.id)
    before = decode_id_cursor(cursor)
    if before is not None:
        query = query.where(col(ReceivedAlert.id) < before)
    return id_page(list(session.exec(query.order_by(col(ReceivedAlert.id).desc()).limit(limit + 1))), limit)


# ---- receiving ----


class InvalidAlert(InvalidBody):
    """A body the integration cannot use: kept as rejected, it changed nothing else."""

    slug = "invalid-alert"

    def __init__(self, reasons: list[str]):
        super().__init__("The alert body is invalid; it was kept for inspection and changed nothing.", reasons)


class InvalidPagerDutyEvent(ProtocolError):
    """Refused as PagerDuty's Events API v2 refuses an event: 400, in its own shape."""

    def __init__(self, reasons: list[str]):
        super().__init__(400, {"status": "invalid event", "message": "Event object is invalid", "errors": reasons})


def authenticate(session: Session, token: str | None, kind: IntegrationKind) -> Integration:
    integration = (
        session.exec(select(Integration).where(Integration.token_hash == hash_secret(token))).first() if token else None
    )
    if integration is None or integration.kind != kind:
        raise Unauthorized(f"A valid {kind} integration token is required (Authorization: Bearer, or ?token=).")
    return integration


def authenticate_signed(session: Session, integration_id: int, headers: Mapping[str, str], body: bytes) -> Integration:
    """The generic integration whose Standard Webhooks signature (webhook-id, -timestamp, -signature) the body has."""
    integration = session.get(Integration, integration_id) if storable(integration_id) else None
    if (
        integration is None or integration.kind != IntegrationKind.generic or not integration.signing_secret
        or not signing.verify(
            integration.signing_secret, headers.get("webhook-id", ""), headers.get("webhook-timestamp", ""), body,
            headers.get("webhook-signature", ""), now=time.time(),
        )
    ):  # fmt: skip
        raise Unauthorized("A valid Standard Webhooks signature from this integration is required.")
    return integration


Alert = TypeVar("Alert", bound=BaseModel)


def receive(
    db: Database, integration: Integration, body: bytes, model: type[Alert], to_signal: Callable[[Alert], Signal],
    settings: Settings,
) -> ReceivedAlert:  # fmt: skip
    """Apply a body in `model`'s format; one that cannot be used raises InvalidAlert."""
    alert = _parse(db, integration, body, model, InvalidAlert)
    return apply(db, integration, to_signal(alert), body, settings)


def pagerduty_routing_key(body: bytes) -> str | None:
    """A PagerDuty event carries its credential in the body; a body that is not JSON is an invalid event."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidPagerDutyEvent(["Invalid JSON"]) from exc
    key = data.get("routing_key") if isinstance(data, dict) else None
    return key if isinstance(key, str) else None


def receive_pagerduty(db: Database, integration: Integration, body: bytes, settings: Settings) -> str:
    """Apply a PagerDuty event as PagerDuty takes it; answers its dedup key, made up for a trigger without one."""
    event = _parse(db, integration, body, PagerDutyEvent, InvalidPagerDutyEvent, _pagerduty_rules)
    dedup_key = event.dedup_key or uuid.uuid4().hex
    apply(db, integration, from_pagerduty(event, dedup_key), body, settings)
    return dedup_key


def _pagerduty_rules(event: PagerDutyEvent) -> list[str]:
    """What PagerDuty requires beyond the shape: a payload to trigger, a dedup key for anything else."""
    if event.event_action == "trigger":
        return [] if event.payload is not None else ["'payload' is missing or blank"]
    return [] if event.dedup_key else ["'dedup_key' is missing or blank"]


def _parse(
    db: Database, integration: Integration, body: bytes, model: type[Alert],
    invalid: Callable[[list[str]], DomainError], rules: Callable[[Alert], list[str]] | None = None,
) -> Alert:  # fmt: skip
    """The body as `model`, obeying `rules`; otherwise it is kept as rejected (credentials masked) in a
    transaction of its own, changing nothing else, and `invalid` is raised with the reasons."""
    try:
        alert = model.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": f"not JSON: {exc}"}]
        reasons = ["{}: {}".format(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in errors]
    else:
        reasons = rules(alert) if rules else []
        if not reasons:
            return alert
    with db.write() as session:
        session.add(
            ReceivedAlert(
                integration_id=integration.id, outcome="rejected", detail="; ".join(reasons)[:500],
                body=masked_body(body),
            )
        )  # fmt: skip
    raise invalid(reasons)


_ATTEMPTS = 3


def apply(db: Database, integration: Integration, signal: Signal, body: bytes, settings: Settings) -> ReceivedAlert:
    """One unit of work; a racing duplicate that lost the open-group index is applied again, and attaches."""
    attempt = 1
    while True:
        try:
            with db.write() as session:
                return flows.handle(session, integration, signal, body, settings)
        except IntegrityError:
            if attempt == _ATTEMPTS:
                raise
            attempt += 1
