"""Acceptances in the console: the list with its filters, an acceptance's page (its covered risks and their state at
each decision, the decisions, its history), and the workflow's steps: requesting one from a risk's page, approving,
rejecting, revoking and extending it, each against the ETag the page was read with, as /api/v1/acceptances does.
Four eyes, the admin above the appetite and the two approvals beyond the tolerance are the service's rules, shown
in its words."""

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.auth import Config, Db, settings_of
from riskops.config import Settings
from riskops.console import register
from riskops.console import register_forms as forms
from riskops.console.pages import (
    PREFIX,
    ConsoleRoute,
    Reading,
    Viewer,
    Writing,
    form_of,
    problem_of,
    render,
    see_other,
)
from riskops.db import Database
from riskops.errors import DomainError
from riskops.risks.acceptances import queries, records, service
from riskops.risks.acceptances.models import (
    AcceptanceExtension,
    AcceptanceRecord,
    AcceptanceRequest,
    AcceptanceStatus,
    AcceptanceSummary,
    Approval,
    DecisionKind,
    Refusal,
)

HERE = f"{PREFIX}/acceptances"
router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
FormFields = Annotated[FormData, Depends(form_of)]
Ref = Annotated[str, Path(max_length=20)]
PAGE_SIZE = 50
HISTORY_SHOWN = 200
_STATUSES = [str(s) for s in AcceptanceStatus]


class ListQuery(BaseModel):
    """The list page's query: the API list's status, risk and needs_reapproval filters, and its cursor."""

    model_config = ConfigDict(extra="forbid")

    status: list[AcceptanceStatus] = Field(default_factory=list, max_length=len(AcceptanceStatus))
    risk: str | None = Field(default=None, max_length=20)
    needs_reapproval: bool | None = None
    cursor: str | None = Field(default=None, max_length=500)


# ---- the list ----


@router.get(HERE, response_class=HTMLResponse)
def acceptance_list(request: Request, viewer: Reading, db: Db) -> HTMLResponse:
    """Who accepted what, until when, on whose approval: newest first, as GET /api/v1/acceptances."""
    params = request.query_params
    chosen = params.getlist("status")
    typed = {name: params.get(name, "") for name in ("risk", "needs_reapproval")}
    found: list[AcceptanceSummary] = []
    following, problem = None, None
    try:
        query = ListQuery.model_validate(
            {name: params.getlist(name) if name == "status" else params[name] for name in params}
        )
        filters = queries.AcceptanceFilter(
            status=query.status, risk=query.risk, needs_reapproval=query.needs_reapproval
        )
        with db.read() as session:
            found, following = queries.list_acceptances(session, filters, cursor=query.cursor, limit=PAGE_SIZE)
    except (ValidationError, DomainError) as exc:
        problem = forms.query_problem(exc)
    filtering = [("status", value) for value in chosen] + [(name, value) for name, value in typed.items() if value]
    return render(
        request, "acceptances/list.html", viewer, status=problem.status if problem else 200, problem=problem,
        acceptances=found, chosen=chosen, typed=typed, statuses=_STATUSES, filtered=bool(filtering),
        paged="cursor" in params, first_page=f"{HERE}?{urlencode(filtering)}",
        next_page=f"{HERE}?{urlencode([*filtering, ('cursor', following)])}" if following else None,
    )  # fmt: skip


# ---- one acceptance ----


@router.get(HERE + "/{ref}", response_class=HTMLResponse)
def acceptance_page(request: Request, viewer: Reading, db: Db, ref: Ref) -> HTMLResponse:
    return _acceptance_page(request, viewer, db, ref)


def _acceptance_page(
    request: Request, viewer: Viewer, db: Database, ref: str, failed: register.Failed | None = None
) -> HTMLResponse:
    with db.read() as session:
        acceptance = service.get(session, ref)
        shown = queries.detail(session, acceptance)
        me = records.identity(viewer.principal)
        approvers = {d.identity for d in service.decisions(session, acceptance.id, DecisionKind.approve)}
        history, _ = audit.service.list_entries(
            session, entity_type="acceptance", entity_id=str(acceptance.id), limit=HISTORY_SHOWN
        )
        levels = forms.levels_of(session)
    decided = {decision.id: decision for decision in shown.decisions}
    return render(
        request, "acceptances/acceptance.html", viewer, status=failed.problem.status if failed else 200,
        acceptance=shown, etag=service.etag(acceptance), failed=failed, decided=decided, history=history,
        change_text=forms.change_text, levels=levels, mine=me == acceptance.requested_by_identity,
        approver=me in approvers, max_days=settings_of(request).acceptance_max_days,
    )  # fmt: skip


def _decided(
    request: Request, viewer: Viewer, db: Database, config: Settings, ref: str, form: FormData, key: str,
    decide: Callable[[Session, AcceptanceRecord, Any, Principal, Settings], None], shape: type[BaseModel],
) -> Response:  # fmt: skip
    """One decision on the acceptance in one unit of work; on to its page, or the page again with the refusal."""
    try:
        data = shape.model_validate(forms.only(form, "comment"))
        with db.write() as session:
            acceptance = service.get_for_change(session, ref, register.etag_of(form))
            decide(session, acceptance, data, viewer.principal, config)
            reference = acceptance.reference
    except (ValidationError, DomainError) as exc:
        return _acceptance_page(request, viewer, db, ref, register.Failed(key, problem_of(exc), forms.typed(form)))
    return see_other(f"{HERE}/{reference}")


@router.post(HERE + "/{ref}/approve", response_class=HTMLResponse)
def approve(request: Request, viewer: Writing, db: Db, config: Config, ref: Ref, form: FormFields) -> Response:
    """As POST /api/v1/acceptances/{ref}/approve: never by its requester; an admin above the appetite; beyond the
    tolerance two people, one an admin."""
    return _decided(request, viewer, db, config, ref, form, "approve", service.approve, Approval)


@router.post(HERE + "/{ref}/reject", response_class=HTMLResponse)
def reject(request: Request, viewer: Writing, db: Db, config: Config, ref: Ref, form: FormFields) -> Response:
    return _decided(request, viewer, db, config, ref, form, "reject", service.reject, Refusal)


@router.post(HERE + "/{ref}/revoke", response_class=HTMLResponse)
def revoke(request: Request, viewer: Writing, db: Db, config: Config, ref: Ref, form: FormFields) -> Response:
    """As POST /api/v1/acceptances/{ref}/revoke: an admin or one of its approvers."""
    return _decided(request, viewer, db, config, ref, form, "revoke", service.revoke, Refusal)


@router.post(HERE + "/{ref}/extend", response_class=HTMLResponse)
def extend(request: Request, viewer: Writing, db: Db, config: Config, ref: Ref, form: FormFields) -> Response:
    """A new request for the same risks, as POST /api/v1/acceptances/{ref}/extend; on to its page."""
    try:
        data = AcceptanceExtension.model_validate(forms.only(form, "justification", "conditions", "expires_at"))
        with db.write() as session:
            old = service.get_for_change(session, ref, register.etag_of(form))
            new: AcceptanceRecord = service.extend(session, old, data, viewer.principal, config)
            reference = new.reference
    except (ValidationError, DomainError) as exc:
        return _acceptance_page(request, viewer, db, ref, register.Failed("extend", problem_of(exc), forms.typed(form)))
    return see_other(f"{HERE}/{reference}")


# ---- requested from a risk's page ----


@router.post(register.HERE + "/{ref}/acceptances", response_class=HTMLResponse)
def request_acceptance(
    request: Request, viewer: Writing, db: Db, config: Config, ref: Ref, form: FormFields
) -> Response:
    """As POST /api/v1/acceptances for this risk and any others named; on to the request's page. A refusal shows
    the risk's page again, with the form as typed."""
    try:
        data = AcceptanceRequest.model_validate(request_input(ref, form))
        with db.write() as session:
            acceptance = service.request(session, data, viewer.principal, config)
            reference = acceptance.reference
    except (ValidationError, DomainError) as exc:
        failed = register.Failed("acceptance-request", problem_of(exc), forms.typed(form))
        return register.show_risk(request, viewer, db, ref, failed=failed)
    return see_other(f"{HERE}/{reference}")


def request_input(ref: str, form: FormData) -> dict[str, Any]:
    """The request form as AcceptanceRequest's input: this risk first, then the others typed."""
    data = forms.only(form, "justification", "conditions", "expires_at")
    others = [other.strip() for other in forms.typed(form).get("risks", "").split(",") if other.strip()]
    return {**data, "risks": [ref, *others]}
