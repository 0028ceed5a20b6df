"""Declaring an incident: its linked risks, and activating its playbook, whose roles, steps and communications
are laid out with absolute deadlines and rendered messages."""

import re
from datetime import timedelta

from sqlmodel import Session, col, select

from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.errors import Conflict, NotFound, Unprocessable, field_error
from riskops.events import service as events
from riskops.incidents import scheduled, timeline
from riskops.incidents.escalations import service as escalations
from riskops.incidents.models import (
    Incident,
    IncidentCreate,
    IncidentMessage,
    IncidentRisk,
    IncidentRole,
    IncidentStep,
    RiskRef,
)
from riskops.playbooks import service as playbooks
from riskops.playbooks.models import PlaybookVersion
from riskops.risks import service as risks
from riskops.risks.models import Risk


def declare(session: Session, data: IncidentCreate, who: Principal, settings: Settings) -> Incident:
    """Declare an incident, activating its playbook (if any) in the same transaction."""
    now = utcnow()
    if data.detected_at is not None and data.detected_at > now:
        raise Unprocessable(
            "The detection time cannot be in the future.",
            errors=[field_error(("body", "detected_at"), "in the future")],
        )
    linked = _resolve_risks(session, data.risk_ids)
    try:
        plan = playbooks.get_version(session, data.playbook, data.playbook_version) if data.playbook else None
    except NotFound as exc:  # a reference in the body: the body is wrong, like a risk id that does not exist
        raise Unprocessable(exc.detail, errors=[field_error(("body", "playbook"), "no such playbook")]) from exc
    if plan is not None and plan.retired_at is not None:
        raise Conflict(
            f"Playbook '{plan.slug}' version {plan.version} is retired and cannot be activated.",
            errors=[field_error(("body", "playbook_version"), "retired")],
        )
    spec = plan.parsed() if plan else None
    severity = data.severity or (spec.severity if spec else None)
    title = data.title or (spec.title if spec else None)
    if title is None or severity is None:
        missing = [name for name, value in (("title", title), ("severity", severity)) if value is None]
        raise Unprocessable(
            f"{' and '.join(missing).capitalize()} needed when no playbook gives one.",
            errors=[field_error(("body", name), "required without a playbook") for name in missing],
        )
    incident = Incident(
        title=title, description=data.description, severity=severity, is_exercise=data.exercise,
        declared_at=now, declared_by=who.name,
        detected_at=data.detected_at or now,  # Moment: already in UTC
    )  # fmt: skip
    session.add(incident)
    session.flush()
    kind = "exercise" if data.exercise else "incident"
    text = f"{severity} {kind} declared: {incident.title}"
    if incident.detected_at < now:
        text += f" (detected {incident.detected_at:%Y-%m-%d %H:%M} UTC)"
    timeline.record(
        session, incident, who, "declared", text, severity=severity, detected_at=incident.detected_at.isoformat()
    )
    for risk in linked:
        session.add(IncidentRisk(incident_id=incident.id, risk_id=risk.id))
        if not data.exercise:  # a drill is not the risk happening
            risks.mark_materialised(session, risk, f"{incident.reference}: {incident.title}", who, settings)
        timeline.record(
            session, incident, who, "risk.linked", f"Linked to {risk.reference} {risk.title}", risk=risk.reference
        )
    if plan is not None:
        _lay_out(session, incident, plan, who)
    session.flush()
    wanted = spec.escalation_policy if spec else None
    policy = escalations.resolve(session, wanted)
    if wanted is not None and policy.name != wanted:
        timeline.record(
            session, incident, who, "note", f"Escalation policy '{wanted}' does not exist; using '{policy.name}'."
        )
    scheduled.reschedule(session, incident, None, settings, policy=policy)
    about = scheduled.event_data(incident, actor=who.name)
    events.emit(session, "incident.declared", "incident", incident.reference, about)
    if plan is not None:
        events.emit(session, "playbook.activated", "incident", incident.reference, about)
    session.flush()
    return incident


def _resolve_risks(session: Session, refs: list[RiskRef]) -> list[Risk]:
    found, errors = {}, []
    for i, ref in enumerate(refs):
        try:
            risk = risks.get_risk(session, risks.parse_risk_ref(str(ref)))
        except NotFound as exc:
            errors.append(field_error(("body", "risk_ids", i), exc.detail))
            continue
        found[risk.id] = risk
    if errors:
        raise Unprocessable("Some linked risks do not exist; nothing was declared.", errors=errors)
    return list(found.values())


def linked_risks(session: Session, incident: Incident) -> list[Risk]:
    return list(
        session.exec(
            select(Risk).join(IncidentRisk, col(IncidentRisk.risk_id) == col(Risk.id))
            .where(IncidentRisk.incident_id == incident.id).order_by(col(Risk.id))
        )
    )  # fmt: skip


def _lay_out(session: Session, incident: Incident, plan: PlaybookVersion, who: Principal) -> None:
    """Lay out the plan with absolute deadlines, each counted from the declaration or the detection as the
    playbook says; the RTO and the MTPD always from the declaration."""
    spec = plan.parsed()
    start = {"declaration": incident.declared_at, "detection": incident.detected_at}
    impact = spec.business_impact
    incident.playbook_slug, incident.playbook_version = plan.slug, plan.version
    incident.rto_minutes, incident.mtpd_minutes = impact.rto_minutes, impact.mtpd_minutes
    incident.breach_at = incident.declared_at + timedelta(minutes=impact.rto_minutes)
    incident.mtpd_at = incident.declared_at + timedelta(minutes=impact.mtpd_minutes)
    for role in spec.roles:
        session.add(
            IncidentRole(
                incident_id=incident.id, key=role.id, title=role.title, instructions=role.instructions,
                required=role.required,
            )
        )  # fmt: skip
    session.add_all(
        IncidentStep(
            incident_id=incident.id, key=step.id, position=i, title=step.title,
            instructions=step.instructions, role=step.role, depends_on=step.depends_on,
            due_at=start[step.due_from] + timedelta(minutes=step.due_minutes), required=not step.optional,
        )
        for i, step in enumerate(spec.steps)
    )  # fmt: skip
    session.add_all(
        IncidentMessage(
            incident_id=incident.id, key=message.id, position=i, audience=message.audience,
            title=message.title, role=message.role, channel=message.channel, body=render(message.template, incident),
            due_at=start[message.due_from] + timedelta(minutes=message.due_minutes), required=not message.optional,
        )
        for i, message in enumerate(spec.communications)
    )  # fmt: skip
    session.add(incident)
    timeline.record(
        session, incident, who, "playbook.activated",
        f"Playbook '{plan.slug}' v{plan.version} activated: {len(spec.steps)} steps, "
        f"{len(spec.communications)} communications, recovery due by {incident.breach_at.isoformat()}",
        playbook=plan.slug, version=plan.version,
    )  # fmt: skip


_PLACEHOLDER = re.compile(r"\{(incident_title|incident_ref|declared_at|detected_at)\}")


def render(template: str, incident: Incident) -> str:
    values = {
        "incident_title": incident.title,
        "incident_ref": incident.reference,
        "declared_at": incident.declared_at.strftime("%Y-%m-%d %H:%M UTC"),
        "detected_at": incident.detected_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
