"""Reading incidents: one incident as the API shows it, the list, and the counts."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, or_, select

from riskops.clock import now as utcnow
from riskops.crisis import Severity
from riskops.incidents.models import (
    UNFINISHED_STEP,
    UNSENT_MESSAGE,
    Incident,
    IncidentCounts,
    IncidentMessage,
    IncidentPublic,
    IncidentRisk,
    IncidentRole,
    IncidentState,
    IncidentStep,
    IncidentSummaryPublic,
    MessagePublic,
    PostIncidentSummary,
    RolePublic,
    StepPublic,
    TimelineEntry,
)
from riskops.incidents.plan import StepMove, step_moves
from riskops.incidents.service import TRANSITIONS, deadline_met, measures, takes_changes
from riskops.pagination import decode_id_cursor, id_page
from riskops.risks import service as risks
from riskops.risks.models import reference


def summarise(incident: Incident, risk_ids: list[str]) -> IncidentSummaryPublic:
    return IncidentSummaryPublic(
        id=incident.id, reference=incident.reference, title=incident.title, severity=incident.severity,
        state=incident.state, exercise=incident.is_exercise, playbook=incident.playbook_slug,
        playbook_version=incident.playbook_version, declared_at=incident.declared_at, breach_at=incident.breach_at,
        risk_ids=risk_ids,
    )  # fmt: skip


def present(session: Session, incident: Incident) -> IncidentPublic:
    now = utcnow()
    where = {"incident_id": incident.id}
    roles = session.exec(select(IncidentRole).filter_by(**where).order_by(col(IncidentRole.id))).all()
    steps = session.exec(select(IncidentStep).filter_by(**where).order_by(col(IncidentStep.position))).all()
    messages = session.exec(select(IncidentMessage).filter_by(**where).order_by(col(IncidentMessage.position))).all()
    # Owed and past due, whatever the incident's state: resolving does not discharge an obligation.
    step_views = [
        StepPublic.model_validate(s).model_copy(update={"overdue": s.status in UNFINISHED_STEP and s.due_at < now})
        for s in steps
    ]
    message_views = [
        MessagePublic.model_validate(m).model_copy(update={"overdue": m.status in UNSENT_MESSAGE and m.due_at < now})
        for m in messages
    ]
    base = summarise(incident, _risk_refs(session, [incident.id])[incident.id])
    return IncidentPublic(
        **base.model_dump(),
        description=incident.description, declared_by=incident.declared_by, detected_at=incident.detected_at,
        acknowledged_at=incident.acknowledged_at, acknowledged_by=incident.acknowledged_by,
        acknowledged_automatically=incident.acknowledged_automatically, mitigated_at=incident.mitigated_at,
        resolved_at=incident.resolved_at, closed_at=incident.closed_at, rto_minutes=incident.rto_minutes,
        mtpd_minutes=incident.mtpd_minutes, mtpd_at=incident.mtpd_at,
        allowed_transitions=sorted(TRANSITIONS[incident.state]),
        unfilled_required_roles=[r.key for r in roles if r.required and r.assignee is None],
        measures=measures(incident),
        summary=PostIncidentSummary.model_validate(incident.summary) if incident.summary else None,
        objectives_met=incident.objectives_met,
        roles=[RolePublic.model_validate(r) for r in roles], steps=step_views, communications=message_views,
        version=incident.version,
    )  # fmt: skip


def list_incidents(
    session: Session, *, exercise: bool = False, state: Sequence[IncidentState] = (),
    severity: Sequence[Severity] = (), playbook: str | None = None, risk: str | None = None, q: str | None = None,
    cursor: str | None = None, limit: int = 50,
) -> tuple[list[IncidentSummaryPublic], str | None]:  # fmt: skip
    """Newest first. Exercises are listed apart: exercise=true lists only drills, false only real incidents.
    `q` finds text in the title or description, whatever its case."""
    clauses = list_filter(exercise=exercise, state=state, severity=severity, playbook=playbook, risk=risk, q=q)
    query = select(Incident).where(*clauses, *before_cursor(cursor))
    rows, next_cursor = id_page(list(session.exec(query.order_by(col(Incident.id).desc()).limit(limit + 1))), limit)
    links = _risk_refs(session, [r.id for r in rows])
    return [summarise(r, links[r.id]) for r in rows], next_cursor


def list_filter(
    *, exercise: bool = False, state: Sequence[IncidentState] = (), severity: Sequence[Severity] = (),
    playbook: str | None = None, risk: str | None = None, q: str | None = None,
) -> list[ColumnElement[bool]]:  # fmt: skip
    """The list's conditions, shared with the read model; a risk that is no id or reference is a 404 here."""
    clauses: list[ColumnElement[bool]] = [col(Incident.is_exercise) == exercise]
    if q:
        clauses.append(
            or_(
                col(Incident.title).icontains(q, autoescape=True),
                col(Incident.description).icontains(q, autoescape=True),
            )
        )
    if state:  # several values mean any of them
        clauses.append(col(Incident.state).in_(state))
    if severity:
        clauses.append(col(Incident.severity).in_(severity))
    if playbook is not None:
        clauses.append(col(Incident.playbook_slug) == playbook)
    if risk is not None:
        linked = select(IncidentRisk.incident_id).where(IncidentRisk.risk_id == risks.parse_risk_ref(risk))
        clauses.append(col(Incident.id).in_(linked))
    return clauses


def before_cursor(cursor: str | None) -> list[ColumnElement[bool]]:
    """The keyset of the newest-first list: the incidents older than the cursor's (none for the first page)."""
    before = decode_id_cursor(cursor)
    return [] if before is None else [col(Incident.id) < before]


def counts(session: Session, *, exercise: bool = False) -> IncidentCounts:
    rows = session.exec(select(Incident.state, Incident.severity).where(Incident.is_exercise == exercise)).all()
    return IncidentCounts(
        exercise=exercise,
        by_state=dict(Counter(str(state) for state, _ in rows)),
        by_severity=dict(Counter(str(severity) for _, severity in rows)),
    )


def _risk_refs(session: Session, incident_ids: list[int]) -> dict[int, list[str]]:
    rows = session.exec(
        select(IncidentRisk.incident_id, IncidentRisk.risk_id)
        .where(col(IncidentRisk.incident_id).in_(incident_ids)).order_by(col(IncidentRisk.risk_id))
    ).all()  # fmt: skip
    out: dict[int, list[str]] = {i: [] for i in incident_ids}
    for incident_id, risk_id in rows:
        out[incident_id].append(reference(risk_id))
    return out


# ---- what the incident room offers ----


@dataclass(frozen=True)
class StepOptions:
    """The moves a step takes now (plan.step_moves), and the unfinished steps it waits for."""

    moves: tuple[StepMove, ...]
    waiting_for: tuple[str, ...]


def step_options(incident: IncidentPublic) -> dict[str, StepOptions]:
    status = {s.key: s.status for s in incident.steps}
    out = {}
    for step in incident.steps:
        waiting = tuple(sorted(k for k in step.depends_on if status.get(k) in UNFINISHED_STEP))
        moves = step_moves(step.status, waiting=bool(waiting)) if takes_changes(incident.state) else ()
        out[step.key] = StepOptions(moves, waiting)
    return out


def in_dependency_order(steps: Sequence[StepPublic]) -> list[StepPublic]:
    """The steps with each after those it depends on, otherwise in the playbook's order."""
    keys = {s.key for s in steps}
    placed: set[str] = set()
    remaining, ordered = list(steps), []
    while remaining:
        step = next((s for s in remaining if set(s.depends_on) & keys <= placed), remaining[0])
        ordered.append(step)
        placed.add(step.key)
        remaining.remove(step)
    return ordered


@dataclass(frozen=True)
class Deadline:
    """The RTO or the MTPD as of now: when it falls, whether it was met (None while it can go either way, as
    service.deadline_met says) and the minutes left (negative once past)."""

    name: str
    at: datetime
    met: bool | None
    minutes_left: int


def deadlines(incident: IncidentPublic) -> list[Deadline]:
    now = utcnow()
    out = []
    for name, at in (("RTO", incident.breach_at), ("MTPD", incident.mtpd_at)):
        if at is not None:
            left = (at - now) // timedelta(minutes=1)
            out.append(Deadline(name, at, deadline_met(at, incident.resolved_at, now), left))
    return out


def recent_timeline(session: Session, incident_id: int, limit: int = 200) -> list[TimelineEntry]:
    """The latest entries of an incident's timeline, newest first (the API's timeline pages through all of them)."""
    query = select(TimelineEntry).where(TimelineEntry.incident_id == incident_id)
    return list(session.exec(query.order_by(col(TimelineEntry.id).desc()).limit(limit)))
