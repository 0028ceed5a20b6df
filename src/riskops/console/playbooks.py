"""Playbooks in the console: the library, a plan laid out on a time line with its versions, and activating it (which
declares an incident and opens its room)."""

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from riskops.apikeys.service import Principal
from riskops.auth import Db, settings_of
from riskops.config import Settings
from riskops.console.incidents import (
    ONCE_FIELD,
    SEVERITY_OPTIONS,
    declare_once,
    incident_input,
    new_once_key,
    room_url,
    typed,
)
from riskops.console.pages import (
    PREFIX,
    ConsoleRoute,
    FormProblem,
    Reading,
    Viewer,
    Writing,
    form_of,
    problem_of,
    render,
    see_other,
)
from riskops.continuity import recovery
from riskops.db import Database
from riskops.errors import DomainError
from riskops.incidents import declaration
from riskops.incidents.models import Activation, Incident, IncidentCreate
from riskops.playbooks import service
from riskops.playbooks.objectives import Figures
from riskops.playbooks.spec import PlaybookSpec
from riskops.risks import service as risks

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)


@router.get("/playbooks", response_class=HTMLResponse)
def library(
    request: Request, viewer: Reading, db: Db, risk: Annotated[str, Query(max_length=100)] = ""
) -> HTMLResponse:
    """Each playbook by its latest version in service; with ?risk=, those that fit the risk first."""
    problem = None
    with db.read() as session:
        try:
            answering = risks.get_risk(session, risks.parse_risk_ref(risk)) if risk.strip() else None
        except DomainError as exc:
            problem, answering = problem_of(exc), None
        listed = service.list_playbooks(session, risk=answering)
    return render(
        request, "playbooks/list.html", viewer, status=problem.status if problem else 200, playbooks=listed,
        risk=risk.strip() if answering else "", typed_risk=risk, problem=problem,
    )  # fmt: skip


# ---- the plan on a time line ----


@dataclass(frozen=True)
class Mark:
    """A step on the chart: its number in the list below, and where its deadline falls."""

    number: int
    title: str
    minutes: int
    x: float
    y: float


@dataclass(frozen=True)
class Chart:
    """The steps' deadlines after activation on a logarithmic time axis (minutes and weeks both readable)."""

    width: int
    height: int
    left: int
    top: int
    axis_y: int
    marks: list[Mark]
    ticks: list[tuple[float, int]]
    objectives: list[tuple[str, float]]


_WIDTH, _LEFT, _RIGHT, _TOP, _ROW, _AXIS = 440, 30, 24, 26, 20, 34
_TICKS = (0, 15, 60, 240, 1440, 4320, 10080, 20160, 43200, 129600, 525600)
_TICK_GAP = 36  # pixels between tick labels, so that they never overlap


def plan_chart(spec: PlaybookSpec, figures: Figures) -> Chart:
    """`figures`: the objectives an activation follows (its own, or its processes': continuity.recovery)."""
    marked = [(name, m) for name, m in (("RTO", figures.rto_minutes), ("MTPD", figures.mtpd_minutes)) if m is not None]
    span = max([s.due_minutes for s in spec.steps] + [m for _, m in marked] + [1])

    def x(minutes: int) -> float:
        return round(_LEFT + (_WIDTH - _LEFT - _RIGHT) * math.log1p(minutes) / math.log1p(span), 1)

    marks = [Mark(i + 1, s.title, s.due_minutes, x(s.due_minutes), _TOP + i * _ROW) for i, s in enumerate(spec.steps)]
    ticks: list[tuple[float, int]] = []
    for minutes in (t for t in _TICKS if t <= span):
        if not ticks or x(minutes) - ticks[-1][0] >= _TICK_GAP:
            ticks.append((x(minutes), minutes))
    axis_y = _TOP + len(spec.steps) * _ROW
    objectives = [(name, x(minutes)) for name, minutes in marked]
    return Chart(_WIDTH, axis_y + _AXIS, _LEFT, _TOP, axis_y, marks, ticks, objectives)


@router.get("/playbooks/{slug}", response_class=HTMLResponse)
def plan_view(request: Request, viewer: Reading, db: Db, slug: str, version: int | None = None) -> HTMLResponse:
    """A version (the latest in service unless ?version=): roles, steps on a time line, communications, business
    impact, and every version."""
    with db.read() as session:
        shown = service.present(service.get_version(session, slug, version))
        versions = [service.present(v) for v in service.list_versions(session, slug)]
        figures = recovery.effective(session, shown.playbook).figures
    spec = shown.playbook
    return render(
        request, "playbooks/plan.html", viewer, shown=shown, spec=spec, versions=versions, figures=figures,
        chart=plan_chart(spec, figures),
        role_titles={r.id: r.title for r in spec.roles}, step_titles={s.id: s.title for s in spec.steps},
    )  # fmt: skip


# ---- activation ----


def _activate_page(
    request: Request, viewer: Viewer, db: Database, slug: str, values: dict[str, str],
    problem: FormProblem | None = None,
) -> HTMLResponse:  # fmt: skip
    version = int(values["version"]) if values.get("version", "").isdigit() else None
    with db.read() as session:
        shown = service.present(service.get_version(session, slug, version))
        figures = recovery.effective(session, shown.playbook).figures
    return render(
        request, "playbooks/activate.html", viewer, status=problem.status if problem else 200, shown=shown,
        figures=figures,
        spec=shown.playbook, values=values, problem=problem, severity_options=SEVERITY_OPTIONS,
    )  # fmt: skip


@router.get("/playbooks/{slug}/activate", response_class=HTMLResponse)
def activate_form(
    request: Request, viewer: Writing, db: Db, slug: str, risk: Annotated[str, Query(max_length=100)] = "",
    version: int | None = None,
) -> HTMLResponse:  # fmt: skip
    """The activation form, the playbook's title and severity filled in; ?risk=R-0001 links that risk."""
    with db.read() as session:
        spec = service.get_version(session, slug, version).parsed()
    values = {"title": spec.title, "severity": spec.severity.value, "risk_ids": risk.strip()}
    values[ONCE_FIELD] = new_once_key()
    if version is not None:
        values["version"] = str(version)
    return _activate_page(request, viewer, db, slug, values)


def _activate(
    database: Database, slug: str, data: Activation, who: Principal, settings: Settings, key: str | None
) -> str:
    """As POST /api/v1/playbooks/{slug}/activate: the incident declared with this playbook's plan laid out."""
    create = IncidentCreate(
        title=data.title, severity=data.severity, description=data.description, risk_ids=data.risk_ids,
        playbook=slug, playbook_version=data.version, exercise=data.exercise, detected_at=data.detected_at,
    )  # fmt: skip

    def work(session: Session) -> Incident:
        plan = service.get_version(session, slug, data.version)
        return declaration.declare(session, create, who, settings, plan=plan)

    return declare_once(database, who, key, f"/api/v1/playbooks/{slug}/activate", data, work)


@router.post("/playbooks/{slug}/activate", response_model=None)
async def activate(request: Request, viewer: Writing, db: Db, slug: str) -> Response:
    form = await form_of(request)
    data: dict[str, Any] = incident_input(form, viewer.zone)
    key = data.pop(ONCE_FIELD, None)
    if str(data.get("version", "")).isdigit():
        data["version"] = int(data["version"])  # the API takes a JSON number
    try:
        activation = Activation.model_validate(data)
        reference = await run_in_threadpool(
            _activate, db, slug, activation, viewer.principal, settings_of(request), key
        )
    except (ValidationError, DomainError) as exc:
        return await run_in_threadpool(_activate_page, request, viewer, db, slug, typed(form), problem_of(exc))
    return see_other(room_url(reference))
