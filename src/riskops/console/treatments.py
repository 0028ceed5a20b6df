"""A risk's treatment plan from its page: adding an action, and moving one on (started, done, or cancelled with a
reason) against the ETag the page was read with, as the treatment-actions API does."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlmodel import Session
from starlette.datastructures import FormData

from riskops.auth import Config, Db
from riskops.console import register
from riskops.console import register_forms as forms
from riskops.console.pages import ConsoleRoute, Writing, fields_of, form_of
from riskops.treatments import service
from riskops.treatments.models import ActionCreate, ActionUpdate

router = APIRouter(prefix=register.HERE, include_in_schema=False, route_class=ConsoleRoute)
FormFields = Annotated[FormData, Depends(form_of)]


@router.post("/{ref}/treatment-actions", response_class=HTMLResponse)
def add_action(request: Request, viewer: Writing, db: Db, config: Config, ref: str, form: FormFields) -> Response:
    """An action, as POST /api/v1/risks/{ref}/treatment-actions."""

    def change(session: Session) -> None:
        data = ActionCreate.model_validate(action_input(form))
        service.add_action(session, service.lock_risk(session, ref), data, viewer.principal, config)

    return register.changed(request, viewer, db, ref, form, "action-new", change, "treatment-plan")


@router.post("/{ref}/treatment-actions/{action_id}", response_class=HTMLResponse)
def move_action(
    request: Request, viewer: Writing, db: Db, config: Config, ref: str, action_id: int, form: FormFields
) -> Response:
    """An action started, done or cancelled (with its reason), as PATCH /api/v1/risks/{ref}/treatment-actions/{id}
    with the page's ETag as If-Match."""

    def change(session: Session) -> None:
        data = ActionUpdate.model_validate(forms.only(form, "status", "cancellation_reason"))
        risk = service.lock_risk(session, ref)
        action = service.get_action(session, risk, action_id)
        service.check_if_match(action, register.etag_of(form))
        service.update_action(session, risk, action, data, viewer.principal, config)

    key = f"action-{action_id}"
    return register.changed(request, viewer, db, ref, form, key, change, key)


def action_input(form: FormData) -> dict[str, Any]:
    """The add-action form as ActionCreate's input: a cost when either of its fields is typed, a control's id as a
    number (anything else goes on as typed, for the model to refuse in its words)."""
    given = fields_of(form)
    data: dict[str, Any] = forms.only(form, "title", "description", "owner", "due_date", "status", "control_effect")
    if "cost.amount" in given or "cost.currency" in given:
        data["cost"] = {"amount": given.get("cost.amount", ""), "currency": given.get("cost.currency", "")}
    if "control_id" in given:
        control = given["control_id"]
        data["control_id"] = int(control) if control.isdigit() else control
    return data
