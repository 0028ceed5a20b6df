from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Query, Response, status
from sqlmodel import Session

from riskops import idempotency
from riskops.auth import Config, Db, Reader, Writer
from riskops.crisis import Severity
from riskops.idempotency import IdempotencyKey
from riskops.incidents import declaration, plan, queries, reads, service, timeline
from riskops.incidents.models import (
    Activation,
    Assignment,
    Closure,
    Incident,
    IncidentCounts,
    IncidentCreate,
    IncidentPublic,
    IncidentState,
    IncidentSummaryPublic,
    MessagePublic,
    MessageSent,
    NoteCreate,
    RolePublic,
    SkipRequest,
    StepCompletion,
    StepPublic,
    TimelineEntryPublic,
    Transition,
)
from riskops.pagination import Page
from riskops.playbooks import service as playbooks

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
# Activation declares an incident, so it is this domain's; its path stays under the playbook it starts.
activation = APIRouter(prefix="/api/v1/playbooks", tags=["playbooks"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=IncidentPublic)
def declare(
    data: IncidentCreate, db: Db, who: Writer, config: Config, idempotency_key: IdempotencyKey = None
) -> Response:
    """Declare an incident; with `playbook`, its plan is activated in the same transaction."""

    def work(session: Session) -> Incident:
        return declaration.declare(session, data, who, config)

    fingerprint = idempotency.fingerprint("POST", router.prefix, data)
    replayed, body = idempotency.run_once(db, who, idempotency_key, fingerprint, work, _answer)
    return incident_created(body, replayed)


@activation.post("/{slug}/activate", status_code=status.HTTP_201_CREATED, response_model=IncidentPublic)
def activate(
    slug: str, data: Activation, db: Db, who: Writer, config: Config, idempotency_key: IdempotencyKey = None
) -> Response:
    """Declare an incident and lay out this playbook's roles, steps and communications, in one transaction."""
    create = IncidentCreate(
        title=data.title, severity=data.severity, description=data.description, risk_ids=data.risk_ids,
        playbook=slug, playbook_version=data.version, exercise=data.exercise, detected_at=data.detected_at,
    )  # fmt: skip

    def work(session: Session) -> Incident:
        plan = playbooks.get_version(session, slug, data.version)  # the path names the playbook: 404 if there is none
        return declaration.declare(session, create, who, config, plan=plan)

    fingerprint = idempotency.fingerprint("POST", f"{activation.prefix}/{slug}/activate", data)
    replayed, body = idempotency.run_once(db, who, idempotency_key, fingerprint, work, _answer)
    return incident_created(body, replayed)


def _answer(session: Session, incident: Incident) -> bytes:
    """The new incident as GET shows it: from the read model, after the commit unless the answer is stored."""
    return reads.read_incident(session, str(incident.id))


def incident_created(body: bytes, replayed: bool) -> Response:
    headers = {"Location": f"/api/v1/incidents/{orjson.loads(body)['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(body, status_code=status.HTTP_201_CREATED, headers=headers, media_type="application/json")


# The two hot reads answer through the read model: JSON bytes from one statement, returned as a Response so that
# FastAPI neither validates nor serialises them again. response_model keeps the documented schema.
@router.get("", response_model=Page[IncidentSummaryPublic])
def list_incidents(
    db: Db,
    _: Reader,
    state: Annotated[list[IncidentState], Query(description="Repeat for any of several states.")] = [],  # noqa: B006
    severity: Annotated[list[Severity], Query(description="Repeat for any of several severities.")] = [],  # noqa: B006
    playbook: str | None = None,
    risk: str | None = Query(default=None, description="A risk id or reference."),
    q: str | None = Query(default=None, max_length=200, description="Text in the title or description, any case."),
    exercise: bool = Query(default=False, description="true lists exercises (drills) instead of real incidents."),
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    with db.read() as session:
        body = reads.read_page(
            session, exercise=exercise, state=state, severity=severity, playbook=playbook, risk=risk, q=q,
            cursor=cursor, limit=limit,
        )  # fmt: skip
    return Response(body, media_type="application/json")


@router.get("/counts")
def incident_counts(db: Db, _: Reader, exercise: bool = False) -> IncidentCounts:
    """Incidents by state and severity; exercises are counted apart."""
    with db.read() as session:
        return queries.counts(session, exercise=exercise)


@router.get("/{incident_ref}", response_model=IncidentPublic)
def get_incident(incident_ref: str, db: Db, _: Reader) -> Response:
    with db.read() as session:
        body = reads.read_incident(session, incident_ref)
    return Response(body, media_type="application/json")


def _move(
    db: Db, config: Config, incident_ref: str, action: service.Action, who: Writer,
    *, note: str | None = None, closure: Closure | None = None,
) -> IncidentPublic:  # fmt: skip
    with db.write() as session:
        incident = service.get_incident(session, incident_ref, for_update=True)
        service.transition(session, incident, action, who, config, note=note, closure=closure)
        return queries.present(session, incident)


# The body of a state move is optional: no body at all, {} or {"note": ...}.
OptionalTransition = Annotated[Transition | None, Body()]


@router.post("/{incident_ref}/acknowledge")
def acknowledge(
    incident_ref: str, db: Db, who: Writer, config: Config, data: OptionalTransition = None
) -> IncidentPublic:
    """Records who acknowledged; an automatic acknowledgement does not count as a time to acknowledge."""
    return _move(db, config, incident_ref, "acknowledge", who, note=data.note if data else None)


@router.post("/{incident_ref}/mitigate")
def mitigate(incident_ref: str, db: Db, who: Writer, config: Config, data: OptionalTransition = None) -> IncidentPublic:
    return _move(db, config, incident_ref, "mitigate", who, note=data.note if data else None)


@router.post("/{incident_ref}/resolve")
def resolve(incident_ref: str, db: Db, who: Writer, config: Config, data: OptionalTransition = None) -> IncidentPublic:
    """Stops escalation and the RTO and MTPD notices; steps and messages still owed keep their reminders."""
    return _move(db, config, incident_ref, "resolve", who, note=data.note if data else None)


@router.post("/{incident_ref}/reopen")
def reopen(incident_ref: str, db: Db, who: Writer, config: Config, data: OptionalTransition = None) -> IncidentPublic:
    return _move(db, config, incident_ref, "reopen", who, note=data.note if data else None)


@router.post("/{incident_ref}/close")
def close(incident_ref: str, data: Closure, db: Db, who: Writer, config: Config) -> IncidentPublic:
    """Needs the post-incident summary; follow-up actions with `control_for` become controls on that risk.
    Refused with 409 (`pending_steps`, `unsent_communications`) while a required step is neither done nor
    skipped or a required communication is unsent."""
    return _move(db, config, incident_ref, "close", who, closure=data)


@router.put("/{incident_ref}/roles/{role_key}")
def assign_role(incident_ref: str, role_key: str, data: Assignment, db: Db, who: Writer) -> RolePublic:
    with db.write() as session:
        incident = service.get_for_change(session, incident_ref)
        return RolePublic.model_validate(plan.assign_role(session, incident, role_key, data.assignee, who))


def _step(
    db: Db, incident_ref: str, key: str, action: plan.StepAction, who: Writer, **kwargs: str | None
) -> StepPublic:
    with db.write() as session:
        incident = service.get_for_change(session, incident_ref)
        return StepPublic.model_validate(plan.change_step(session, incident, key, action, who, **kwargs))


@router.put("/{incident_ref}/steps/{step_key}/assignee")
def assign_step(incident_ref: str, step_key: str, data: Assignment, db: Db, who: Writer) -> StepPublic:
    return _step(db, incident_ref, step_key, "assign", who, assignee=data.assignee)


@router.post("/{incident_ref}/steps/{step_key}/start")
def start_step(incident_ref: str, step_key: str, db: Db, who: Writer) -> StepPublic:
    """Refused with 409 (`waiting_for`) while a step it depends on is neither done nor skipped."""
    return _step(db, incident_ref, step_key, "start", who)


@router.post("/{incident_ref}/steps/{step_key}/complete")
def complete_step(
    incident_ref: str, step_key: str, db: Db, who: Writer, data: Annotated[StepCompletion | None, Body()] = None
) -> StepPublic:
    """Refused with 409 (`waiting_for`) while a step it depends on is neither done nor skipped. An optional
    `note` is kept on the timeline."""
    return _step(db, incident_ref, step_key, "complete", who, note=data.note if data else None)


@router.post("/{incident_ref}/steps/{step_key}/skip")
def skip_step(incident_ref: str, step_key: str, data: SkipRequest, db: Db, who: Writer) -> StepPublic:
    return _step(db, incident_ref, step_key, "skip", who, reason=data.reason)


@router.post("/{incident_ref}/communications/{message_key}/sent")
def message_sent(incident_ref: str, message_key: str, data: MessageSent, db: Db, who: Writer) -> MessagePublic:
    with db.write() as session:
        incident = service.get_for_change(session, incident_ref)
        return MessagePublic.model_validate(plan.mark_message_sent(session, incident, message_key, who, data.note))


@router.post("/{incident_ref}/notes", status_code=status.HTTP_201_CREATED)
def add_note(incident_ref: str, data: NoteCreate, db: Db, who: Writer) -> TimelineEntryPublic:
    with db.write() as session:
        incident = service.get_for_change(session, incident_ref)
        entry = timeline.add_note(session, incident, data.text, who)
        session.flush()
        return TimelineEntryPublic.model_validate(entry)


@router.get("/{incident_ref}/timeline")
def get_timeline(
    incident_ref: str, db: Db, _: Reader, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> Page[TimelineEntryPublic]:
    """Everything that happened, oldest first, with who and when."""
    with db.read() as session:
        rows, next_cursor = timeline.timeline(
            session, service.get_incident(session, incident_ref), cursor=cursor, limit=limit
        )
        return Page(items=[TimelineEntryPublic.model_validate(r) for r in rows], next_cursor=next_cursor)
