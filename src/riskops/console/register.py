"""The register in the console: the risk list with the API's filters, sort, keyset pages and exports; logging a risk
with its score previewed on the current matrix; a risk's page (statement, ratings and target, appetite, score over
time, controls, treatment plan, acceptances, processes and assets, history, linked incidents, suggested playbooks);
editing a risk against the ETag it was read with, so that no one's change is lost; reassessing, closing and
reopening. Every change goes through the service functions the API calls."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData

from riskops import audit
from riskops.auth import Config, Db, settings_of
from riskops.config import Settings
from riskops.console import charts, i18n, risk_details
from riskops.console import register_forms as forms
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
from riskops.db import Database
from riskops.errors import DomainError, PreconditionFailed
from riskops.incidents import queries as incidents
from riskops.playbooks import service as playbooks
from riskops.risks import applied_controls, queries, reads, service
from riskops.risks.library import ControlCreate, ControlStatus, ControlUpdate
from riskops.risks.matrices import service as matrices
from riskops.risks.models import (
    TREATMENTS,
    AssessmentCreate,
    AssessmentPublic,
    RiskCreate,
    RiskStatus,
    RiskType,
    RiskUpdate,
    StatusChange,
    Treatment,
    reference,
)
from riskops.risks.presentation import present, present_assessment

HERE = f"{PREFIX}/risks"
router = APIRouter(prefix=HERE, include_in_schema=False, route_class=ConsoleRoute)
FormFields = Annotated[FormData, Depends(form_of)]
PAGE_SIZE = 50
CHART_POINTS = 200
HISTORY_PAGE = 100
_EXPORTS = ("csv", "xlsx", "json")
_TREATMENTS = [str(t) for t in Treatment]
# The treatment choice grouped by the type of risk that may take it (accept: either); console.js offers the type's.
_BY_TYPE = [
    *((str(kind), [str(t) for t in TREATMENTS[kind] if t != Treatment.accept]) for kind in RiskType),
    ("either", [str(Treatment.accept)]),
]
# The list's yes-or-no filters, kept in the page's links as typed.
_FLAGS = ("overdue", "outside_appetite", "beyond_tolerance")


# ---- the list ----


@router.get("", response_class=HTMLResponse)
def register(request: Request, viewer: Reading, db: Db) -> HTMLResponse:
    """A page of the register, read through the API list's own read model (the same JSON, parsed once)."""
    params = request.query_params
    chosen = {name: params.getlist(name) for name in forms.LISTED}
    typed = {name: params.get(name, "") for name in (*_FLAGS, "q", "sort")}
    page: dict[str, Any] = {"items": [], "next_cursor": None}
    problem = None
    with db.read() as session:
        levels = forms.levels_of(session)
        try:
            query = forms.RegisterQuery.model_validate(
                {name: params.getlist(name) if name in forms.LISTED else params[name] for name in params}
            )
            filters, sort = query.risk_filter(), query.sort
            page = orjson.loads(reads.read_page(session, filters, sort=sort, cursor=query.cursor, limit=PAGE_SIZE))
        except (ValidationError, DomainError) as exc:
            problem = forms.query_problem(exc)
    filtering = [(name, value) for name in forms.LISTED for value in chosen[name]]
    filtering += [(name, typed[name]) for name in (*_FLAGS, "q") if typed[name]]
    sort_pair = [("sort", typed["sort"])] if typed["sort"] else []
    following = page["next_cursor"]
    return render(
        request, "risks/list.html", viewer, status=problem.status if problem else 200, problem=problem,
        risks=page["items"], levels=levels, chosen=chosen, typed=typed, filtered=bool(filtering),
        sort_keys=get_args(queries.SortKey), statuses=[str(s) for s in RiskStatus], treatments=_TREATMENTS,
        first_page=f"{HERE}?{urlencode([*filtering, *sort_pair])}",
        next_page=f"{HERE}?{urlencode([*filtering, *sort_pair, ('cursor', following)])}" if following else None,
        paged="cursor" in params, day=partial(forms.day_of, language=viewer.language, zone=viewer.zone),
        exports={fmt: f"/api/v1/risks/export?{urlencode([('format', fmt), *filtering])}" for fmt in _EXPORTS},
    )  # fmt: skip


# ---- logging a new risk ----


@router.get("/new", response_class=HTMLResponse)
def new_risk_form(request: Request, viewer: Writing, db: Db) -> HTMLResponse:
    return _new_page(request, viewer, db, {"type": str(RiskType.threat)})


@router.post("/new", response_class=HTMLResponse)
def create_risk(request: Request, viewer: Writing, db: Db, config: Config, form: FormFields) -> Response:
    """Log the risk as POST /api/v1/risks does; on to its page. A refusal shows the form again, as typed."""
    try:
        data = RiskCreate.model_validate(forms.new_risk_input(form, viewer.zone))
        with db.write() as session:
            risk_id = service.add_risk(session, data, viewer.principal, config)
    except (ValidationError, DomainError) as exc:
        return _new_page(request, viewer, db, forms.typed(form), problem_of(exc))
    return see_other(f"{HERE}/{reference(risk_id)}")


def _new_page(
    request: Request, viewer: Viewer, db: Database, values: Mapping[str, str], problem: FormProblem | None = None
) -> HTMLResponse:
    with db.read() as session:
        spec = matrices.current(session).parsed()
        suggested = forms.suggestions(session)
    return render(
        request, "risks/new.html", viewer, status=problem.status if problem else 200, problem=problem,
        values=values, treatments=_BY_TYPE, **forms.rating_context(spec), **suggested,
    )  # fmt: skip


# ---- a risk's page, and the changes made from it ----


@dataclass(frozen=True)
class Failed:
    """A form of the risk's page that was refused: which one, why, and what was typed in it."""

    form: str
    problem: FormProblem
    typed: dict[str, str]


@router.get("/{ref}", response_class=HTMLResponse)
def risk_page(request: Request, viewer: Reading, db: Db, ref: str, history: str | None = None) -> HTMLResponse:
    return show_risk(request, viewer, db, ref, history_cursor=history)


def show_risk(
    request: Request, viewer: Viewer, db: Database, ref: str, *, failed: Failed | None = None,
    history_cursor: str | None = None,
) -> HTMLResponse:  # fmt: skip
    with db.read() as session:
        risk = service.get_risk(session, service.parse_risk_ref(ref))
        shown = present(risk)
        rows, _ = queries.list_assessments(session, risk, limit=CHART_POINTS)
        assessments = [present_assessment(row) for row in rows]
        entries, more_history = audit.service.list_entries(
            session, entity_type="risk", entity_id=str(risk.id), cursor=history_cursor or None, limit=HISTORY_PAGE
        )
        linked = [
            incident
            for exercise in (False, True)
            for incident in incidents.list_incidents(session, exercise=exercise, risk=str(risk.id))[0]
        ]
        suggested = [playbook for playbook in playbooks.list_playbooks(session, risk=risk) if playbook.fits]
        levels = forms.levels_of(session)
        owners = forms.suggestions(session)["owners"] if viewer.may("write") else []
        details = risk_details.details_of(session, risk)
    spec = levels.current
    return render(
        request, "risks/risk.html", viewer, status=failed.problem.status if failed else 200, risk=shown,
        etag=service.etag_of(shown.version), assessments=assessments, history=entries, more_history=more_history,
        change_text=forms.change_text, incidents=linked, playbooks=suggested, levels=levels, failed=failed,
        chart=_score_chart(viewer, shown.reference, assessments, levels), **forms.rating_context(spec),
        control_statuses=[str(s) for s in ControlStatus], owners=owners, details=details,
        max_days=settings_of(request).acceptance_max_days,
    )  # fmt: skip


def _score_chart(viewer: Viewer, ref: str, assessments: list[AssessmentPublic], levels: forms.Levels) -> Markup:
    """The current score (residual where assessed) of each assessment, over time, in its level's colour."""
    _ = i18n.translations(viewer.language).gettext
    moment = partial(i18n.when, language=viewer.language, zone=viewer.zone)
    points = []
    for assessment in assessments:
        current = assessment.residual or assessment.inherent
        label = _("%(when)s: score %(score)s, %(level)s") % {
            "when": moment(assessment.assessed_at), "score": current.score, "level": current.level
        }  # fmt: skip
        colour = levels.colour(assessment.matrix_version, current.level)
        points.append(charts.Point(at=assessment.assessed_at, value=current.score, color=colour, label=label))
    spec = levels.current
    latest = assessments[0].residual or assessments[0].inherent  # newest first
    return charts.line_chart(
        points, top=max([len(spec.likelihood) * len(spec.impact), *(p.value for p in points)]),
        chart_id="score-chart", title=_("Score of %(reference)s over time") % {"reference": ref},
        description=_("Assessments: %(count)s. Latest score: %(score)s (%(level)s).")
        % {"count": len(points), "score": latest.score, "level": latest.level},
        x_label=_("Date of the assessment"), y_label=_("Score"),
        day=partial(forms.day_of, language=viewer.language, zone=viewer.zone),
    )  # fmt: skip


def changed(
    request: Request, viewer: Viewer, db: Database, ref: str, form: FormData, key: str,
    change: Callable[[Session], object], anchor: str,
) -> Response:  # fmt: skip
    """Make one change to a risk in one unit of work; on to its page, or the page again with the refusal."""
    try:
        with db.write() as session:
            change(session)
    except (ValidationError, DomainError) as exc:
        return show_risk(request, viewer, db, ref, failed=Failed(key, problem_of(exc), forms.typed(form)))
    return see_other(f"{HERE}/{reference(service.parse_risk_ref(ref))}#{anchor}")


@router.post("/{ref}/assessments", response_class=HTMLResponse)
def reassess(request: Request, viewer: Writing, db: Db, config: Config, ref: str, form: FormFields) -> Response:
    """A new assessment on the current matrix, as POST /api/v1/risks/{ref}/assessments with If-Match."""

    def change(session: Session) -> None:
        data = AssessmentCreate.model_validate(forms.assessment_input(form))
        risk = service.get_for_change(session, ref, etag_of(form))
        service.assess_risk(session, risk, data, viewer.principal, config)

    return changed(request, viewer, db, ref, form, "assess", change, "ratings")


@router.post("/{ref}/close", response_class=HTMLResponse)
def close_risk(request: Request, viewer: Writing, db: Db, config: Config, ref: str, form: FormFields) -> Response:
    return _change_status(request, viewer, db, config, ref, form, "close")


@router.post("/{ref}/reopen", response_class=HTMLResponse)
def reopen_risk(request: Request, viewer: Writing, db: Db, config: Config, ref: str, form: FormFields) -> Response:
    return _change_status(request, viewer, db, config, ref, form, "reopen")


def _change_status(
    request: Request, viewer: Viewer, db: Database, config: Settings, ref: str, form: FormData,
    action: Literal["close", "reopen"],
) -> Response:  # fmt: skip
    """As POST /api/v1/risks/{ref}/close or /reopen, with If-Match."""

    def change(session: Session) -> None:
        data = StatusChange.model_validate(forms.only(form, "reason"))
        risk = service.get_for_change(session, ref, etag_of(form))
        service.change_status(session, risk, action, data, viewer.principal, config)

    return changed(request, viewer, db, ref, form, "status", change, "top")


def etag_of(form: FormData) -> str | None:
    """The ETag the page was read with, sent on as the API's If-Match."""
    value = form.get("etag")
    return value if isinstance(value, str) and value else None


@router.post("/{ref}/controls", response_class=HTMLResponse)
def add_control(request: Request, viewer: Writing, db: Db, config: Config, ref: str, form: FormFields) -> Response:
    """A control, as POST /api/v1/risks/{ref}/controls."""

    def change(session: Session) -> None:
        data = ControlCreate.model_validate(forms.only(form, "title", "owner", "status", "due_date"))
        risk = service.get_for_change(session, ref, None)
        applied_controls.add_control(session, risk, data, viewer.principal, config)

    return changed(request, viewer, db, ref, form, "control-new", change, "controls")


@router.post("/{ref}/controls/{control_id}", response_class=HTMLResponse)
def edit_control(
    request: Request, viewer: Writing, db: Db, config: Config, ref: str, control_id: int, form: FormFields
) -> Response:
    """A control's fields as the form shows them, as PATCH /api/v1/risks/{ref}/controls/{id}; a blank due date
    clears it."""

    def change(session: Session) -> None:
        typed = forms.typed(form)
        data = ControlUpdate.model_validate(
            {name: typed.get(name, "").strip() for name in ("title", "owner", "status")}
            | {"due_date": typed.get("due_date", "").strip() or None}
        )
        risk = service.get_for_change(session, ref, None)
        applied_controls.update_control(session, risk, control_id, data, viewer.principal, config)

    key = f"control-{control_id}"
    return changed(request, viewer, db, ref, form, key, change, key)


# ---- editing, against the ETag the form was read with ----


@router.get("/{ref}/edit", response_class=HTMLResponse)
def edit_form(request: Request, viewer: Writing, db: Db, ref: str) -> HTMLResponse:
    return _edit_page(request, viewer, db, ref)


@router.post("/{ref}/edit", response_class=HTMLResponse)
def edit_risk(request: Request, viewer: Writing, db: Db, config: Config, ref: str, form: FormFields) -> Response:
    """The fields the person changed since the form was read (each against its was.<name>), as PATCH
    /api/v1/risks/{ref} with the form's ETag as If-Match."""
    typed = forms.typed(form)
    _, mine = forms.changes(typed)
    try:
        data = RiskUpdate.model_validate(forms.update_input(mine, typed, viewer.zone))
        with db.write() as session:
            risk = service.get_for_change(session, ref, etag_of(form))
            service.update_risk(session, risk, data, viewer.principal, config)
    except (ValidationError, DomainError) as exc:
        return _edit_page(request, viewer, db, ref, problem_of(exc), typed)
    return see_other(f"{HERE}/{reference(service.parse_risk_ref(ref))}")


def _edit_page(
    request: Request, viewer: Viewer, db: Database, ref: str, problem: FormProblem | None = None,
    typed: Mapping[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    """The edit form as the risk stands. After a refusal, as typed; after a conflict (412: someone else saved
    first), the saved version with this person's changes over it, its ETag, and what differs."""
    with db.read() as session:
        risk = present(service.get_risk(session, service.parse_risk_ref(ref)))
        suggested = forms.suggestions(session)
        spec = matrices.get(session, risk.matrix_version).parsed()  # a target is scored on the risk's matrix
    saved = forms.edit_values(risk, viewer.zone)
    etag, values, was, conflict = service.etag_of(risk.version), saved, saved, None
    if problem and typed is not None:
        read_with, mine = forms.changes(typed)
        if problem.status == PreconditionFailed.status:
            values, conflict = saved | mine, forms.differences(saved, read_with, mine)
        else:
            etag, values, was = typed.get("etag", ""), {n: typed.get(n, "") for n in forms.EDITED}, read_with
    return render(
        request, "risks/edit.html", viewer, status=problem.status if problem else 200, risk=risk, etag=etag,
        values=values, was=was, problem=problem, conflict=conflict, treatments=_BY_TYPE, **forms.rating_context(spec),
        **suggested,
    )  # fmt: skip
