"""Alerts from other systems: authenticate, store, route, deduplicate, and open or close incidents."""

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal, hash_secret
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.crisis import Severity
from riskops.db import get_row
from riskops.errors import InvalidTransition, Unprocessable, field_error
from riskops.incidents import service as incidents
from riskops.incidents.models import Incident, IncidentCreate, IncidentState
from riskops.integrations.models import (
    AlertGroup,
    AlertInstance,
    AlertmanagerPayload,
    GenericAlert,
    Integration,
    IntegrationCreate,
    IntegrationKind,
    IntegrationPublic,
    PagerDutyEvent,
    ReceivedAlert,
    Route,
)
from riskops.integrations.redaction import masked_body
from riskops.pagination import decode_id_cursor, id_page
from riskops.webhooks import signing

ENDPOINTS = {
    IntegrationKind.alertmanager: "/api/v1/inbound/alertmanager",
    IntegrationKind.pagerduty: "/api/v1/inbound/pagerduty/v2/enqueue",
    IntegrationKind.generic: "/api/v1/inbound/generic",
}
Action = Literal["trigger", "acknowledge", "resolve"]

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


def by_token(session: Session, token: str, kind: IntegrationKind) -> Integration | None:
    integration = session.exec(select(Integration).where(Integration.token_hash == hash_secret(token))).first()
    return integration if integration is not None and integration.kind == kind else None


def principal(integration: Integration) -> Principal:
    """Who the history says acted: the integration, by name."""
    return Principal(
        key_id=-(integration.id or 0), name=f"integration:{integration.name}", role=Role.write, automatic=True
    )


def received(
    session: Session, integration: Integration, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[ReceivedAlert], str | None]:
    query = select(ReceivedAlert).where(ReceivedAlert.integration_id == integration.id)
    before = decode_id_cursor(cursor)
    if before is not None:
        query = query.where(col(ReceivedAlert.id) < before)
    return id_page(list(session.exec(query.order_by(col(ReceivedAlert.id).desc()).limit(limit + 1))), limit)


def reject(session: Session, integration: Integration, body: bytes, reason: str) -> None:
    """A body that cannot be used is kept for inspection (credentials masked), and changes nothing else."""
    session.add(
        ReceivedAlert(integration_id=integration.id, outcome="rejected", detail=reason[:500], body=masked_body(body))
    )


# ---- what every format comes down to ----


@dataclass
class Instance:
    fingerprint: str
    starts_at: str
    status: Literal["firing", "resolved"]
    labels: dict[str, str]


@dataclass
class Signal:
    key: str
    action: Action
    title: str = ""
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    severity: Severity | None = None
    instances: list[Instance] = field(default_factory=list)


_SEVERITY = {
    "critical": Severity.sev1, "page": Severity.sev1, "error": Severity.sev2, "major": Severity.sev2,
    "high": Severity.sev2, "warning": Severity.sev3, "minor": Severity.sev3, "info": Severity.sev4,
}  # fmt: skip


def from_alertmanager(payload: AlertmanagerPayload) -> Signal:
    first = payload.alerts[0]
    labels = {**first.labels, **payload.commonLabels}
    name = labels.get("alertname", "alert")
    summary = payload.commonAnnotations.get("summary") or first.annotations.get("summary", "")
    return Signal(
        key=payload.groupKey, action="trigger" if payload.status == "firing" else "resolve",
        title=f"{name}: {summary}" if summary else name,
        description="\n".join(filter(None, (payload.commonAnnotations.get("description"), payload.externalURL))),
        labels=labels, severity=_SEVERITY.get(labels.get("severity", "").lower()),
        instances=[
            Instance(a.fingerprint or hashlib.sha256(repr(sorted(a.labels.items())).encode()).hexdigest()[:16],
                     a.startsAt, a.status, a.labels)
            for a in payload.alerts
        ],
    )  # fmt: skip


def from_pagerduty(event: PagerDutyEvent, dedup_key: str) -> Signal:
    labels: dict[str, str] = {}
    title = ""
    if event.payload is not None:
        p = event.payload
        fields = {
            "severity": p.severity, "source": p.source, "component": p.component, "group": p.group,
            "class": p.class_, "summary": p.summary,
        }  # fmt: skip
        labels = {k: v for k, v in fields.items() if v}
        title = p.summary
    details = event.payload.custom_details if event.payload else None
    return Signal(
        key=dedup_key, action=event.event_action, title=title[:200],
        description="" if details is None else (details if isinstance(details, str) else json.dumps(details))[:20000],
        labels=labels, severity=_SEVERITY.get(labels.get("severity", "")),
    )  # fmt: skip


def from_generic(alert: GenericAlert) -> Signal:
    labels = dict(alert.labels)
    if alert.severity:
        labels.setdefault("severity", str(alert.severity))
    return Signal(
        key=alert.dedup_key, action=alert.action, title=alert.title or "", description=alert.details,
        labels=labels, severity=alert.severity,
    )  # fmt: skip


def route_for(integration: Integration, labels: dict[str, str]) -> Route:
    for raw in integration.routes:
        route = Route.model_validate(raw)
        if all(_holds(m.op, labels.get(m.label), m.value) for m in route.matchers):
            return route
    return Route.model_validate(integration.default_route)


def _holds(op: str, actual: str | None, wanted: str) -> bool:
    if op == "=":
        return actual == wanted
    if op == "!=":
        return actual != wanted
    return actual is not None and re.fullmatch(wanted, actual) is not None


# ---- acting on a signal ----

_ENDED = (IncidentState.resolved, IncidentState.closed)


def handle(
    session: Session, integration: Integration, signal: Signal, body: bytes, settings: Settings
) -> ReceivedAlert:
    """Apply one signal in the caller's transaction and record what was received and what it did.

    A firing goes to the key's latest incident while that is open, or resolved less than the flap window
    ago (it is reopened); otherwise it opens a new incident. A concurrent duplicate that opens the same
    group fails on the open-group unique index and rolls back whole; the caller runs it again, and then
    it attaches to the group the other opened.
    """
    who = principal(integration)
    flap_window_minutes = settings.flap_window_minutes
    # Locked (group, then incident) so that racing news, and people moving the incident, apply in turn.
    group = session.exec(
        select(AlertGroup)
        .where(AlertGroup.integration_id == integration.id, AlertGroup.key == signal.key)
        .order_by(col(AlertGroup.id).desc())
        .limit(1)
        .with_for_update()
    ).first()
    incident = session.get(Incident, group.incident_id, with_for_update=True) if group else None
    action = _update_instances(session, integration, signal) if signal.instances else signal.action
    outcome, detail = "ignored", ""
    if action == "trigger":
        if group is None or incident is None or not _takes_a_refiring(incident, flap_window_minutes):
            if group is not None and group.closed_at is None:
                group.closed_at = utcnow()  # people ended its incident while the alert still fired
                session.add(group)
                session.flush()
            incident = _open(session, integration, signal, who, settings)
            group = AlertGroup(integration_id=integration.id, key=signal.key, incident_id=incident.id)
            outcome = "opened"
        elif incident.state == IncidentState.resolved:
            incidents.transition(session, incident, "reopen", who, settings, note="the alert fired again")
            within = f"within {flap_window_minutes} minutes of the resolution"
            incidents.add_note(
                session, incident, f"Reopened: {integration.name} fired again {within}: {signal.title}", who
            )
            outcome, detail = "reopened", f"the alert fired again {within}"
        else:
            incidents.add_note(session, incident, f"Alert again from {integration.name}: {signal.title}", who)
            outcome, detail = "attached", "an open incident already has this alert"
        group.closed_at = None  # firing: retries and later news go to this group
        session.add(group)
        session.flush()
    elif group is not None and incident is not None and group.closed_at is None and incident.state not in _ENDED:
        if action == "acknowledge":
            outcome = _advance(session, incident, ("acknowledge",), who, "acknowledged", settings)
        else:
            outcome = _advance(session, incident, ("acknowledge", "mitigate", "resolve"), who, "resolved", settings)
            group.closed_at = utcnow()
            session.add(group)
    else:
        detail = "no open incident for this alert"
    receipt = ReceivedAlert(
        integration_id=integration.id, outcome=outcome, detail=detail, dedup_key=signal.key,
        incident_id=incident.id if incident else None, body=masked_body(body),
    )  # fmt: skip
    session.add(receipt)
    session.flush()
    return receipt


def _takes_a_refiring(incident: Incident, flap_window_minutes: int) -> bool:
    """An open incident takes its alert's next firing; so does one resolved less than the window ago (flapping).
    A closed incident never does: people have written it up."""
    if incident.state not in _ENDED:
        return True
    return (
        incident.state == IncidentState.resolved
        and incident.resolved_at is not None
        and utcnow() < incident.resolved_at + timedelta(minutes=flap_window_minutes)
    )


def _update_instances(session: Session, integration: Integration, signal: Signal) -> Action:
    """Record each alert's news; a firing that arrives after its own resolution is stale and changes nothing.
    The group is firing while any of its alerts is."""
    for item in signal.instances:
        known = session.exec(
            select(AlertInstance).where(
                AlertInstance.integration_id == integration.id, AlertInstance.fingerprint == item.fingerprint,
                AlertInstance.starts_at == item.starts_at,
            )
        ).first()  # fmt: skip
        if known is None:
            session.add(
                AlertInstance(
                    integration_id=integration.id, group_key=signal.key, fingerprint=item.fingerprint,
                    starts_at=item.starts_at, status=item.status, labels=item.labels,
                )
            )  # fmt: skip
        elif known.status != "resolved":
            known.status, known.updated_at = item.status, utcnow()
            session.add(known)
    session.flush()
    firing = session.exec(
        select(AlertInstance.id).where(
            AlertInstance.integration_id == integration.id, AlertInstance.group_key == signal.key,
            AlertInstance.status == "firing",
        ).limit(1)
    ).first()  # fmt: skip
    return "trigger" if firing is not None else "resolve"


def _open(session: Session, integration: Integration, signal: Signal, who: Principal, settings: Settings) -> Incident:
    route = route_for(integration, signal.labels)
    create = IncidentCreate(
        title=(signal.title or f"Alert from {integration.name}")[:200],
        severity=route.severity or (None if route.playbook else signal.severity or Severity.sev3),
        description=signal.description, risk_ids=route.risks, playbook=route.playbook,
    )  # fmt: skip
    incident = incidents.declare(session, create, who, settings)
    incidents.add_note(session, incident, f"Opened by {integration.name} (alert {signal.key})", who)
    if not route.page:
        incidents.transition(session, incident, "acknowledge", who, settings, note="route does not page")
    return incident


def _advance(
    session: Session, incident: Incident, actions: tuple[incidents.Action, ...], who: Principal, done: str,
    settings: Settings,
) -> str:  # fmt: skip
    """Walk the state machine as far as the alert says; moves already made are skipped."""
    for action in actions:
        if action in incidents.TRANSITIONS[incident.state]:
            try:
                incidents.transition(session, incident, action, who, settings, note="by the alert source")
            except InvalidTransition:
                break
    reached = incident.state in (IncidentState.resolved, IncidentState.closed) if done == "resolved" else (
        incident.state != IncidentState.declared
    )  # fmt: skip
    return done if reached else "ignored"
