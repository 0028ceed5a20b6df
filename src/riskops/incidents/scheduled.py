"""An incident's notices: which it has in each state, planning and dropping them as it moves, and acting on
them when they fall due."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlmodel import Session, col, select

from riskops.config import Settings
from riskops.events import service as events
from riskops.incidents.escalations import service as escalations
from riskops.incidents.escalations.models import PolicySpec
from riskops.incidents.models import (
    OPEN,
    UNFINISHED_STEP,
    UNSENT_MESSAGE,
    Incident,
    IncidentMessage,
    IncidentState,
    IncidentStep,
)
from riskops.mail import service as mail
from riskops.notices import service as scheduler
from riskops.notices.models import Notice
from riskops.notices.service import NoticeHandler
from riskops.playbooks import service as playbooks

STEP_DUE, STEP_OVERDUE = "step.due", "step.overdue"
MESSAGE_DUE, MESSAGE_OVERDUE = "communication.due", "communication.overdue"
BREACH_IMMINENT, BREACHED = "incident.breach_imminent", "incident.breached"
MTPD_IMMINENT, MTPD_BREACHED = "incident.mtpd_imminent", "incident.mtpd_breached"
ESCALATION = escalations.ESCALATION
# The incident's watched deadlines: the field each is due at, its warning and the notice when it passes.
WATCHED = {"breach_at": (BREACH_IMMINENT, BREACHED), "mtpd_at": (MTPD_IMMINENT, MTPD_BREACHED)}
_WATCHED_FIELD = {kind: field for field, kinds in WATCHED.items() for kind in kinds}

Obligation = IncidentStep | IncidentMessage
# A notice's subject_type: the reminder and overdue kinds, and the statuses in which the item is still owed.
OBLIGATIONS: dict[str, tuple[tuple[str, str], tuple[str, ...]]] = {
    "step": ((STEP_DUE, STEP_OVERDUE), UNFINISHED_STEP),
    "message": ((MESSAGE_DUE, MESSAGE_OVERDUE), UNSENT_MESSAGE),
}


class Watch(StrEnum):
    """What an incident's notices are about."""

    escalation = "escalation"
    deadlines = "deadlines"  # the RTO and the MTPD
    obligations = "obligations"  # the steps and communications still owed


KINDS: dict[Watch, tuple[str, ...]] = {
    Watch.escalation: (ESCALATION,),
    Watch.deadlines: tuple(_WATCHED_FIELD),
    Watch.obligations: tuple(kind for kinds, _ in OBLIGATIONS.values() for kind in kinds),
}


def watches(state: IncidentState) -> frozenset[Watch]:
    """What an incident in this state has notices for, and nothing else: escalation until someone acknowledges
    it, the RTO and MTPD while it is open, its steps and communications until it is closed."""
    kept = set() if state == IncidentState.closed else {Watch.obligations}
    if state in OPEN:
        kept.add(Watch.deadlines)
    if state == IncidentState.declared:
        kept.add(Watch.escalation)
    return frozenset(kept)


class Owed(NamedTuple):
    """A step or communication still owed, as its notices need it."""

    subject_type: str  # a key of OBLIGATIONS
    id: int
    due_at: datetime


def reschedule(
    session: Session, incident: Incident, previous: IncidentState | None, settings: Settings,
    *, policy: PolicySpec | None = None, owed: Sequence[Owed] | None = None,
) -> None:  # fmt: skip
    """Bring the incident's notices in line with its state: plan what it starts watching, coming from `previous`
    (None: just declared, its plan written), and drop what it does not watch. `policy`: the escalation policy,
    `owed`: the steps and communications owed, when the caller has them already."""
    watching = watches(incident.state)
    starts = watching - (watches(previous) if previous is not None else frozenset())
    planned: list[dict[str, Any]] = []
    if starts & {Watch.escalation, Watch.deadlines}:
        policy = policy or _escalation_policy(session, incident)
        if Watch.escalation in starts:
            planned += escalations.level_notices(ESCALATION, "incident", incident.id, incident.declared_at, policy)
        if Watch.deadlines in starts:
            planned += _deadline_notices(incident, policy, settings)
    if Watch.obligations in starts:
        for item in owed if owed is not None else [_owing(row) for row in _owed(session, incident)]:
            planned += _obligation_notices(incident, item, settings)
    scheduler.plan(session, planned)
    stops = [watch for watch in Watch if watch not in watching]
    dropped = [kind for watch in stops if watch != Watch.obligations for kind in KINDS[watch]]
    if dropped:
        scheduler.cancel(session, "incident", incident.id, dropped)
    if Watch.obligations in stops:  # closed: even the optional items left open
        for row in _owed(session, incident):
            cancel_obligation(session, row)


def _escalation_policy(session: Session, incident: Incident) -> PolicySpec:
    spec = (
        playbooks.get_version(session, incident.playbook_slug, incident.playbook_version).parsed()
        if incident.playbook_slug
        else None
    )
    return escalations.resolve(session, spec.escalation_policy if spec else None)


def _owed(session: Session, incident: Incident) -> list[Obligation]:
    steps = select(IncidentStep).where(
        IncidentStep.incident_id == incident.id, col(IncidentStep.status).in_(UNFINISHED_STEP)
    )
    messages = select(IncidentMessage).where(
        IncidentMessage.incident_id == incident.id, col(IncidentMessage.status).in_(UNSENT_MESSAGE)
    )
    return [
        *session.exec(steps.order_by(col(IncidentStep.position))),
        *session.exec(messages.order_by(col(IncidentMessage.position))),
    ]


def event_data(incident: Incident, **extra: Any) -> dict[str, Any]:
    return {
        "id": incident.id, "reference": incident.reference, "title": incident.title,
        "severity": str(incident.severity), "state": str(incident.state), "exercise": incident.is_exercise,
        "playbook": incident.playbook_slug, "detected_at": incident.detected_at.isoformat(),
        "breach_at": _iso(incident.breach_at), "mtpd_at": _iso(incident.mtpd_at),
        **extra,
    }  # fmt: skip


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _deadline_notices(incident: Incident, policy: PolicySpec, settings: Settings) -> list[dict[str, Any]]:
    """For each watched deadline (RTO, MTPD), a warning before it runs out and a notice when it has, to every
    target of the escalation policy."""
    webhooks, emails = escalations.all_targets(policy)
    data = {"webhooks": sorted(webhooks), "emails": sorted(emails)}
    warning = timedelta(minutes=settings.breach_warning_minutes)
    planned = []
    for field, (imminent, passed) in WATCHED.items():
        at: datetime | None = getattr(incident, field)
        if at is None:
            continue
        ref = at.isoformat()
        planned += [
            scheduler.notice(imminent, "incident", incident.id, ref, max(incident.declared_at, at - warning), data),
            scheduler.notice(passed, "incident", incident.id, ref, at, data),
        ]
    return planned


def _owing(row: Obligation) -> Owed:
    return Owed(_subject_type(row), row.id, row.due_at)


def _obligation_notices(incident: Incident, item: Owed, settings: Settings) -> list[dict[str, Any]]:
    """A reminder before a step's or communication's deadline and a notice at it; a deadline already past when
    the incident is declared (counted from an earlier detection) is reminded of at once."""
    reminder_kind, overdue_kind = OBLIGATIONS[item.subject_type][0]
    reminder = item.due_at - timedelta(minutes=settings.step_reminder_minutes)
    ref, data = item.due_at.isoformat(), {"incident_id": incident.id}
    return [
        scheduler.notice(reminder_kind, item.subject_type, item.id, ref, max(incident.declared_at, reminder), data),
        scheduler.notice(overdue_kind, item.subject_type, item.id, ref, max(incident.declared_at, item.due_at), data),
    ]


def cancel_obligation(session: Session, row: Obligation) -> None:
    subject_type = _subject_type(row)
    scheduler.cancel(session, subject_type, row.id, OBLIGATIONS[subject_type][0])


def _subject_type(row: Obligation) -> str:
    return "step" if isinstance(row, IncidentStep) else "message"


def escalate(session: Session, notice: Notice, settings: Settings) -> None:
    """Still unacknowledged at this level's time: notify the level's targets."""
    incident = session.get(Incident, notice.subject_id)
    if incident is None or Watch.escalation not in watches(incident.state):
        return  # acknowledged meanwhile: escalation stops
    extra = {k: notice.data[k] for k in ("policy", "level", "round")}
    _notify(session, incident, "incident.escalated", notice, **extra)


def watch_deadline(session: Session, notice: Notice, settings: Settings) -> None:
    """The RTO or MTPD is near or past while the incident is unresolved: notify every policy target."""
    incident = session.get(Incident, notice.subject_id)
    if incident is None:
        return
    at = getattr(incident, _WATCHED_FIELD[notice.kind])
    if Watch.deadlines in watches(incident.state) and at is not None and at == datetime.fromisoformat(notice.ref):
        _notify(session, incident, notice.kind, notice)


def remind_obligation(session: Session, notice: Notice, settings: Settings) -> None:
    """A step or communication is reminded of in any state of the incident but closed, until it is finished."""
    row: Obligation | None = (
        session.get(IncidentStep, notice.subject_id)
        if notice.subject_type == "step"
        else session.get(IncidentMessage, notice.subject_id)
    )
    incident = session.get(Incident, notice.data["incident_id"])
    if row is None or incident is None or Watch.obligations not in watches(incident.state):
        return
    if row.status not in OBLIGATIONS[notice.subject_type][1] or row.due_at != datetime.fromisoformat(notice.ref):
        return
    if isinstance(row, IncidentStep):
        about: dict[str, Any] = {"step": row.key, "step_title": row.title}
    else:
        about = {"communication": row.key, "communication_title": row.title, "audience": str(row.audience)}
    data = event_data(incident, **about, due_at=row.due_at.isoformat())
    events.emit(session, notice.kind, "incident", incident.reference, data)


def _notify(session: Session, incident: Incident, kind: str, notice: Notice, **extra: Any) -> None:
    data = event_data(incident, **extra)
    events.emit(session, kind, "incident", incident.reference, data, targets=notice.data.get("webhooks", []))
    for address in notice.data.get("emails", []):
        what = kind.removeprefix("incident.").replace("_", " ")
        mail.queue(
            session, address, f"[riskops] {incident.reference} {what}: {incident.title}",
            f"{incident.reference} ({incident.severity}) {incident.title} is {incident.state}: {what}.\n"
            f"Declared {incident.declared_at:%Y-%m-%d %H:%M} UTC"
            + (f"; recovery due by {incident.breach_at:%Y-%m-%d %H:%M} UTC" if incident.breach_at else "")
            + (f"; disruption intolerable after {incident.mtpd_at:%Y-%m-%d %H:%M} UTC" if incident.mtpd_at else "")
            + ".",
        )  # fmt: skip


NOTICE_HANDLERS: dict[str, NoticeHandler] = {
    **dict.fromkeys(KINDS[Watch.escalation], escalate),
    **dict.fromkeys(KINDS[Watch.deadlines], watch_deadline),
    **dict.fromkeys(KINDS[Watch.obligations], remind_obligation),
}
