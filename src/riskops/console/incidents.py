"""Incidents in the console: the list with the API's filters, declaring one, and the incident room, where the plan is
worked (roles, steps, communications, notes, state moves) and every change shows to everyone in the room live."""

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from riskops import idempotency
from riskops.apikeys.service import Principal
from riskops.auth import Db, settings_of
from riskops.console.pages import (
    PREFIX,
    ConsoleRoute,
    FormProblem,
    Reading,
    Viewer,
    Writing,
    fields_of,
    form_of,
    problem_of,
    render,
    see_other,
)
from riskops.crisis import Severity
from riskops.db import Database
from riskops.errors import Conflict, DomainError
from riskops.incidents import declaration, models, plan, queries, service, timeline
from riskops.playbooks import service as playbooks
from riskops.playbooks.models import PlaybookListed
from riskops.users import service as users

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
PAGE_SIZE = 25
TIMELINE_SHOWN = 200
# Blank rows of follow-up actions the close form offers.
FOLLOW_UP_ROWS = 3


def room_url(ref: str) -> str:
    return f"{PREFIX}/incidents/{ref}"


# ---- the declaration's form (also the playbook activation's) ----


def incident_input(form: FormData, zone: ZoneInfo) -> dict[str, Any]:
    """A declaration form as the API's models take it: the ticked checkbox as true, the linked risks as a list, a
    detection time typed without a zone read in the viewer's."""
    data = fields_of(form)
    data["exercise"] = "exercise" in data  # a checkbox is sent only when ticked
    if "risk_ids" in data:
        data["risk_ids"] = data["risk_ids"].replace(",", " ").split()
    if "detected_at" in data:
        data["detected_at"] = _in_zone(data["detected_at"], zone)
    return data


def _in_zone(text: str, zone: ZoneInfo) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text  # the model says what is wrong with it
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).isoformat()


def options_of(library: list[PlaybookListed]) -> list[tuple[str, str]]:
    return [(p.id, f"{p.title} ({p.id})") for p in library]


SEVERITY_OPTIONS = [(s.value, s.value) for s in Severity]


def typed(form: FormData) -> dict[str, str]:
    """What the user typed, to show again in a form that was refused."""
    return {name: value for name, value in form.items() if isinstance(value, str)}


# A declaring form carries a key of its own, used as the API's Idempotency-Key: sent twice, it declares once.
ONCE_FIELD = "idempotency_key"
_ONCE = re.compile(r"[\w-]{16,64}")


def new_once_key() -> str:
    return secrets.token_urlsafe(16)


def declare_once(
    database: Database, who: Principal, key: str | None, path: str, body: BaseModel,
    declare: Callable[[Session], models.Incident],
) -> str:  # fmt: skip
    """Run a declaration as the API's POST `path` with the form's key runs it (a repeat opens the same incident);
    the incident's reference."""
    fingerprint = idempotency.fingerprint("POST", path, body)
    key = key if key and _ONCE.fullmatch(key) else None
    _, answer = idempotency.run_once(
        database, who, key, fingerprint, declare, lambda _, incident: orjson.dumps({"reference": incident.reference})
    )
    reference: str = orjson.loads(answer)["reference"]
    return reference


# ---- the list ----


@dataclass(frozen=True)
class ListFilters:
    """The list's filters, as GET /api/v1/incidents takes them (a blank field filters nothing)."""

    state: list[models.IncidentState]
    severity: list[Severity]
    playbook: str | None
    risk: str | None
    q: str | None
    exercise: bool

    def query(self) -> list[tuple[str, str]]:
        """The filters as a query string's pairs, for the pager's links."""
        pairs = [("state", str(s)) for s in self.state] + [("severity", str(s)) for s in self.severity]
        pairs += [(name, value) for name, value in (("playbook", self.playbook), ("risk", self.risk), ("q", self.q))
                  if value]  # fmt: skip
        return pairs + ([("exercise", "true")] if self.exercise else [])


@router.get("/incidents", response_class=HTMLResponse)
def incident_list(
    request: Request, viewer: Reading, db: Db,
    state: Annotated[list[models.IncidentState], Query()] = [],  # noqa: B006
    severity: Annotated[list[Severity], Query()] = [],  # noqa: B006
    playbook: str = "", risk: Annotated[str, Query(max_length=100)] = "", q: Annotated[str, Query(max_length=200)] = "",
    exercise: bool = False, cursor: str | None = None,
) -> HTMLResponse:  # fmt: skip
    """Newest first, filtered as GET /api/v1/incidents filters, a page at a time."""
    filters = ListFilters(state, severity, playbook.strip() or None, risk.strip() or None, q.strip() or None, exercise)
    problem, items, following = None, list[models.IncidentSummaryPublic](), None
    with db.read() as session:
        library = playbooks.list_playbooks(session)
        try:
            items, following = queries.list_incidents(
                session, exercise=filters.exercise, state=filters.state, severity=filters.severity,
                playbook=filters.playbook, risk=filters.risk, q=filters.q, cursor=cursor, limit=PAGE_SIZE,
            )  # fmt: skip
        except DomainError as exc:
            problem = problem_of(exc)
    return render(
        request, "incidents/list.html", viewer, status=problem.status if problem else 200, items=items,
        filters=filters, problem=problem, playbook_options=options_of(library), states=list(models.IncidentState),
        severities=list(Severity),
        next_url=f"?{urlencode([*filters.query(), ('cursor', following)])}" if following else None,
        first_url=f"?{urlencode(filters.query())}" if cursor else None,
    )  # fmt: skip


@router.get("/incidents/new", response_class=HTMLResponse)
def declare_form(request: Request, viewer: Writing, db: Db) -> HTMLResponse:
    return _declare_page(request, viewer, db, {ONCE_FIELD: new_once_key()}, None)


def _declare_page(
    request: Request, viewer: Viewer, db: Database, values: dict[str, str], problem: FormProblem | None
) -> HTMLResponse:
    with db.read() as session:
        library = playbooks.list_playbooks(session)
    return render(
        request, "incidents/new.html", viewer, status=problem.status if problem else 200, values=values,
        problem=problem, playbook_options=options_of(library), severity_options=SEVERITY_OPTIONS,
    )  # fmt: skip


@router.post("/incidents/new", response_model=None)
async def declare(request: Request, viewer: Writing, db: Db) -> Response:
    """Declare an incident as POST /api/v1/incidents does; on to its room."""
    form = await form_of(request)
    given = incident_input(form, viewer.zone)
    key = given.pop(ONCE_FIELD, None)
    try:
        data = models.IncidentCreate.model_validate(given)

        def work(session: Session) -> models.Incident:
            return declaration.declare(session, data, viewer.principal, settings_of(request))

        reference = await run_in_threadpool(declare_once, db, viewer.principal, key, "/api/v1/incidents", data, work)
    except (ValidationError, DomainError) as exc:
        return await run_in_threadpool(_declare_page, request, viewer, db, typed(form), problem_of(exc))
    return see_other(room_url(reference))


# ---- the incident room ----


@dataclass(frozen=True)
class Room:
    incident: models.IncidentPublic
    steps: list[models.StepPublic]
    step_options: dict[str, queries.StepOptions]
    step_titles: dict[str, str]
    role_titles: dict[str, str]
    unsent: frozenset[str]
    deadlines: list[queries.Deadline]
    timeline: list[models.TimelineEntry]
    people: list[str]
    open_for_changes: bool


def load_room(session: Session, ref: str) -> Room:
    found = queries.present(session, service.get_incident(session, ref))
    return Room(
        incident=found, steps=queries.in_dependency_order(found.steps), step_options=queries.step_options(found),
        step_titles={s.key: s.title for s in found.steps}, role_titles={r.key: r.title for r in found.roles},
        unsent=frozenset(m.key for m in found.communications if m.status in models.UNSENT_MESSAGE),
        deadlines=queries.deadlines(found), timeline=queries.recent_timeline(session, found.id, TIMELINE_SHOWN),
        people=[u.email for u in users.list_users(session) if u.active],
        open_for_changes=service.takes_changes(found.state),
    )  # fmt: skip


def _room_page(
    request: Request, viewer: Viewer, db: Database, ref: str, problem: FormProblem | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    with db.read() as session:
        room = load_room(session, ref)
    return render(
        request, "incidents/room.html", viewer, status=problem.status if problem else 200, room=room,
        incident=room.incident, problem=problem, values=values or {}, live_every=3,
    )  # fmt: skip


@router.get("/incidents/{ref}", response_class=HTMLResponse)
def incident_room(request: Request, viewer: Reading, db: Db, ref: str) -> HTMLResponse:
    return _room_page(request, viewer, db, ref)


@router.get("/incidents/{ref}/live", response_model=None)
def incident_live(request: Request, viewer: Reading, db: Db, ref: str) -> Response:
    """The room's changing part as HTML, with an ETag: 304 while it is what the browser has."""
    with db.read() as session:
        room = load_room(session, ref)
    page = render(request, "incidents/_live.html", viewer, room=room, incident=room.incident, values={})
    tag = f'"{hashlib.sha256(page.body).hexdigest()[:32]}"'
    page.headers["ETag"] = tag
    given = {t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")}
    if tag in given or "*" in given:
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "no-store"})
    return page


async def _in_room(
    request: Request, viewer: Viewer, db: Database, ref: str, work: Callable[[Session, dict[str, Any]], object],
    anchor: str,
) -> Response:  # fmt: skip
    """Run a change of the room in one transaction and go back to the room; a refusal shows the room with it."""
    form = await form_of(request)

    def run() -> None:
        with db.write() as session:
            work(session, fields_of(form))

    try:
        await run_in_threadpool(run)
    except (ValidationError, DomainError) as exc:
        return await run_in_threadpool(_room_page, request, viewer, db, ref, problem_of(exc), typed(form))
    return see_other(f"{room_url(ref)}#{anchor}")


@router.post("/incidents/{ref}/move", response_model=None)
async def move(
    request: Request, viewer: Writing, db: Db, ref: str, action: Annotated[service.Action, Form()]
) -> Response:
    """A state move, as POST /api/v1/incidents/{ref}/{action} makes it (closing has its own form)."""

    def work(session: Session, data: dict[str, Any]) -> None:
        note = models.Transition.model_validate({k: v for k, v in data.items() if k != "action"}).note
        incident = service.get_incident(session, ref, for_update=True)
        service.transition(session, incident, action, viewer.principal, settings_of(request), note=note)

    return await _in_room(request, viewer, db, ref, work, "status")


@router.post("/incidents/{ref}/roles/{key}", response_model=None)
async def assign_role(request: Request, viewer: Writing, db: Db, ref: str, key: str) -> Response:
    def work(session: Session, data: dict[str, Any]) -> None:
        from_form = models.Assignment.model_validate(data)
        plan.assign_role(session, service.get_for_change(session, ref), key, from_form.assignee, viewer.principal)

    return await _in_room(request, viewer, db, ref, work, "roles")


@router.post("/incidents/{ref}/steps/{key}/{action}", response_model=None)
async def change_step(request: Request, viewer: Writing, db: Db, ref: str, key: str, action: plan.StepMove) -> Response:
    """Start, complete (with an optional note) or skip (with a reason) a step, as the API's step routes do."""

    def work(session: Session, data: dict[str, Any]) -> None:
        given: dict[str, str | None] = {}
        if action == "complete":
            given["note"] = models.StepCompletion.model_validate(data).note
        elif action == "skip":
            given["reason"] = models.SkipRequest.model_validate(data).reason
        plan.change_step(session, service.get_for_change(session, ref), key, action, viewer.principal, **given)

    return await _in_room(request, viewer, db, ref, work, f"step-{key}")


@router.post("/incidents/{ref}/communications/{key}/sent", response_model=None)
async def message_sent(request: Request, viewer: Writing, db: Db, ref: str, key: str) -> Response:
    def work(session: Session, data: dict[str, Any]) -> None:
        note = models.MessageSent.model_validate(data).note
        plan.mark_message_sent(session, service.get_for_change(session, ref), key, viewer.principal, note)

    return await _in_room(request, viewer, db, ref, work, f"message-{key}")


@router.post("/incidents/{ref}/notes", response_model=None)
async def add_note(request: Request, viewer: Writing, db: Db, ref: str) -> Response:
    def work(session: Session, data: dict[str, Any]) -> None:
        text = models.NoteCreate.model_validate(data).text
        timeline.add_note(session, service.get_for_change(session, ref), text, viewer.principal)

    return await _in_room(request, viewer, db, ref, work, "timeline")


# ---- closing ----


def _summary_input(form: FormData) -> dict[str, Any]:
    """The post-incident summary's fields from the close form: the follow-up rows with anything typed in them."""
    data = fields_of(form)
    summary: dict[str, Any] = {k: data[k] for k in ("what_happened", "impact", "root_cause") if k in data}
    if data.get("objectives_met") in ("yes", "no"):
        summary["objectives_met"] = data["objectives_met"] == "yes"
    rows = []
    for i in range(FOLLOW_UP_ROWS):
        names = {f"action-{i}-{k}": k for k in ("title", "owner", "due_date", "control_for")}
        row = {key: data[name] for name, key in names.items() if name in data}
        if row:
            rows.append(row)
    summary["follow_up_actions"] = rows
    return summary


def _close_page(
    request: Request, viewer: Viewer, db: Database, ref: str, values: dict[str, str],
    problem: FormProblem | None = None, owed: dict[str, Any] | None = None,
) -> HTMLResponse:  # fmt: skip
    with db.read() as session:
        incident = queries.present(session, service.get_incident(session, ref))
    return render(
        request, "incidents/close.html", viewer, status=problem.status if problem else 200, incident=incident,
        values=values, problem=problem, owed=owed or {}, rows=range(FOLLOW_UP_ROWS),
        risk_options=[(ref, ref) for ref in incident.risk_ids],
    )  # fmt: skip


@router.get("/incidents/{ref}/close", response_class=HTMLResponse)
def close_form(request: Request, viewer: Writing, db: Db, ref: str) -> HTMLResponse:
    return _close_page(request, viewer, db, ref, {})


@router.post("/incidents/{ref}/close", response_model=None)
async def close(request: Request, viewer: Writing, db: Db, ref: str) -> Response:
    """Close with the post-incident summary, as POST /api/v1/incidents/{ref}/close does."""
    form = await form_of(request)

    def run() -> None:
        closure = models.Closure(summary=models.PostIncidentSummary.model_validate(_summary_input(form)))
        with db.write() as session:
            incident = service.get_incident(session, ref, for_update=True)
            service.transition(session, incident, "close", viewer.principal, settings_of(request), closure=closure)

    try:
        await run_in_threadpool(run)
    except (ValidationError, DomainError) as exc:
        owed = exc.extra if isinstance(exc, Conflict) else {}  # what is pending: the API's 409 names it
        return await run_in_threadpool(_close_page, request, viewer, db, ref, typed(form), problem_of(exc), owed)
    return see_other(room_url(ref))
