"""A signal's effect on incidents: deduplicated into its alert group, it opens, attaches to, reopens,
acknowledges or resolves an incident."""

from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, select

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.crisis import Severity
from riskops.db import insert_numbered
from riskops.errors import InvalidTransition
from riskops.incidents import declaration, timeline
from riskops.incidents import service as incidents
from riskops.incidents.models import ENDED, Incident, IncidentCreate, IncidentState
from riskops.integrations.models import AlertGroup, AlertInstance, Integration, ReceivedAlert
from riskops.integrations.redaction import masked_body
from riskops.integrations.signals import Action, Signal, route_for


def _principal(integration: Integration) -> Principal:
    """Who the history says acted: the integration, by name."""
    return Principal(key_id=-integration.id, name=f"integration:{integration.name}", role=Role.write, automatic=True)


def handle(
    session: Session, integration: Integration, signal: Signal, body: bytes, settings: Settings
) -> ReceivedAlert:
    """Apply one signal in the caller's transaction and record what was received and what it did.

    A firing goes to the key's latest incident while that is open, or resolved less than the flap window
    ago (it is reopened); otherwise it opens a new incident. A concurrent duplicate that opens the same
    group fails on the open-group unique index and rolls back whole; the caller runs it again, and then
    it attaches to the group the other opened.
    """
    who = _principal(integration)
    flap_window_minutes = settings.flap_window_minutes
    # Locked (group, then incident) so that racing news, and people moving the incident, apply in turn.
    latest = session.exec(
        select(AlertGroup, Incident)
        .join(Incident, col(Incident.id) == col(AlertGroup.incident_id))
        .where(AlertGroup.integration_id == integration.id, AlertGroup.key == signal.key)
        .order_by(col(AlertGroup.id).desc())
        .limit(1)
        .with_for_update()
    ).first()
    group, incident = latest if latest is not None else (None, None)
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
            _note(session, incident, f"Reopened: {integration.name} fired again {within}: {signal.title}", who)
            outcome, detail = "reopened", f"the alert fired again {within}"
        else:
            _note(session, incident, f"Alert again from {integration.name}: {signal.title}", who)
            outcome, detail = "attached", "an open incident already has this alert"
        group.closed_at = None  # firing: retries and later news go to this group
        session.add(group)
    elif group is not None and incident is not None and group.closed_at is None and incident.state not in ENDED:
        if action == "acknowledge":
            outcome = _advance(session, incident, ("acknowledge",), who, "acknowledged", settings)
        else:
            outcome = _advance(session, incident, ("acknowledge", "mitigate", "resolve"), who, "resolved", settings)
            group.closed_at = utcnow()
            session.add(group)
    else:
        detail = "no open incident for this alert"
    session.flush()  # the alert's rows: a duplicate open group fails here
    receipt: dict[str, Any] = {
        "integration_id": integration.id, "received_at": utcnow(), "outcome": outcome, "detail": detail,
        "dedup_key": signal.key, "incident_id": incident.id if incident else None, "body": masked_body(body),
    }  # fmt: skip
    (receipt_id,) = insert_numbered(session, ReceivedAlert, [receipt])
    return ReceivedAlert(id=receipt_id, **receipt)


def _note(session: Session, incident: Incident, text: str, who: Principal) -> None:
    """A note on the incident's timeline, written at once (after what the incident's moves wrote)."""
    timeline.record_all(session, [timeline.entry(incident, who, "note", text, utcnow())])


def _takes_a_refiring(incident: Incident, flap_window_minutes: int) -> bool:
    """An open incident takes its alert's next firing; so does one resolved less than the window ago (flapping).
    A closed incident never does: people have written it up."""
    if incident.state not in ENDED:
        return True
    return (
        incident.state == IncidentState.resolved
        and incident.resolved_at is not None
        and utcnow() < incident.resolved_at + timedelta(minutes=flap_window_minutes)
    )


def _update_instances(session: Session, integration: Integration, signal: Signal) -> Action:
    """Record each alert's news; a firing that arrives after its own resolution is stale and changes nothing.
    The group is firing while any of its alerts is."""
    rows = session.exec(
        select(AlertInstance).where(
            AlertInstance.integration_id == integration.id,
            col(AlertInstance.fingerprint).in_(sorted({item.fingerprint for item in signal.instances})),
            col(AlertInstance.starts_at).in_(sorted({item.starts_at for item in signal.instances})),
        )
    )  # fmt: skip
    known = {(row.fingerprint, row.starts_at): row for row in rows}
    firing = False
    for item in signal.instances:
        instance = known.get((item.fingerprint, item.starts_at))
        if instance is None:
            instance = known[item.fingerprint, item.starts_at] = AlertInstance(
                integration_id=integration.id, group_key=signal.key, fingerprint=item.fingerprint,
                starts_at=item.starts_at, status=item.status, labels=item.labels,
            )  # fmt: skip
            session.add(instance)
        elif instance.status != "resolved":
            instance.status, instance.updated_at = item.status, utcnow()
            session.add(instance)
        firing = firing or (instance.status == "firing" and instance.group_key == signal.key)
    if firing:  # one of these alerts: no need to ask about the group's others
        return "trigger"
    others = session.exec(
        select(AlertInstance.id).where(
            AlertInstance.integration_id == integration.id, AlertInstance.group_key == signal.key,
            AlertInstance.status == "firing",
        ).limit(1)
    ).first()  # fmt: skip
    return "trigger" if others is not None else "resolve"


def _open(session: Session, integration: Integration, signal: Signal, who: Principal, settings: Settings) -> Incident:
    route = route_for(integration, signal.labels)
    create = IncidentCreate(
        title=(signal.title or f"Alert from {integration.name}")[:200],
        severity=route.severity or (None if route.playbook else signal.severity or Severity.sev3),
        description=signal.description, risk_ids=route.risks, playbook=route.playbook,
    )  # fmt: skip
    incident = declaration.declare(session, create, who, settings)
    _note(session, incident, f"Opened by {integration.name} (alert {signal.key})", who)
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
    reached = incident.state in ENDED if done == "resolved" else incident.state != IncidentState.declared
    return done if reached else "ignored"
