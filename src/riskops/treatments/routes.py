from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from riskops.auth import Config, Db, Reader, Writer
from riskops.pagination import Page
from riskops.risks import service as risks
from riskops.treatments import queries, service
from riskops.treatments.models import (
    ActionCreate,
    ActionStatus,
    ActionUpdate,
    CalendarDate,
    TreatmentActionPublic,
    TreatmentPlan,
)

router = APIRouter(tags=["treatments"])

PLAN = "/api/v1/risks/{risk_ref}/treatment-actions"
IfMatch = Annotated[str | None, Header(description="The action's ETag you read; a stale one gets 412.")]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post(PLAN, status_code=status.HTTP_201_CREATED)
def add_action(
    risk_ref: str, data: ActionCreate, db: Db, who: Writer, config: Config, response: Response
) -> TreatmentActionPublic:
    """Add an action to an open risk's treatment plan; due dates are days, overdue from the next day (UTC)."""
    with db.write() as session:
        risk = service.lock_risk(session, risk_ref)
        action = service.add_action(session, risk, data, who, config)
        response.headers["ETag"] = service.etag(action)
        response.headers["Location"] = f"/api/v1/risks/{risk.reference}/treatment-actions/{action.id}"
        return queries.present(action, risk.status, queries.today())


@router.get(PLAN)
def list_actions(
    risk_ref: str, db: Db, _: Reader, cursor: str | None = None, limit: Limit = 100
) -> Page[TreatmentActionPublic]:
    """The risk's treatment plan: its actions in the order they were added."""
    with db.read() as session:
        risk = risks.get_risk(session, risks.parse_risk_ref(risk_ref))
        items, next_cursor = queries.list_for_risk(session, risk, cursor=cursor or None, limit=limit)
        return Page(items=items, next_cursor=next_cursor)


@router.get(PLAN + "/{action_id}")
def get_action(risk_ref: str, action_id: int, db: Db, _: Reader, response: Response) -> TreatmentActionPublic:
    with db.read() as session:
        risk = risks.get_risk(session, risks.parse_risk_ref(risk_ref))
        action = service.get_action(session, risk, action_id)
        response.headers["ETag"] = service.etag(action)
        return queries.present(action, risk.status, queries.today())


@router.patch(PLAN + "/{action_id}")
def update_action(
    risk_ref: str, action_id: int, data: ActionUpdate, db: Db, who: Writer, config: Config, response: Response,
    if_match: IfMatch = None,
) -> TreatmentActionPublic:  # fmt: skip
    """Change an action: its progress (status; cancelling needs a reason), owner, due date, cost or control. Done or
    cancelled, it is final. Finishing the last open action, with one done at least, completes the plan and makes the
    risk due for reassessment."""
    with db.write() as session:
        risk = service.lock_risk(session, risk_ref)
        action = service.get_action(session, risk, action_id)
        service.check_if_match(action, if_match)
        action = service.update_action(session, risk, action, data, who, config)
        response.headers["ETag"] = service.etag(action)
        return queries.present(action, risk.status, queries.today())


@router.get("/api/v1/risks/{risk_ref}/treatment-plan")
def treatment_plan(risk_ref: str, db: Db, _: Reader) -> TreatmentPlan:
    """What is being done about the risk: its actions open, overdue and done, their cost, and what is due next."""
    with db.read() as session:
        return queries.plan_of(session, risks.get_risk(session, risks.parse_risk_ref(risk_ref)))


Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ActionQuery(BaseModel):
    """Repeat a filter for any of several values (status=planned&status=in-progress)."""

    model_config = ConfigDict(extra="forbid")

    owner: list[Text] = Field(default_factory=list, max_length=50, description="Matched without regard to case.")
    status: list[ActionStatus] = Field(default_factory=list, max_length=4)
    risk: list[Text] = Field(default_factory=list, max_length=50, description="Risk references (R-0042) or ids.")
    overdue: bool | None = Field(default=None, description="Open actions of open risks past their due date.")
    due_before: CalendarDate | None = Field(default=None, description="Due before this day (not on it).")
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


@router.get("/api/v1/treatment-actions")
def list_register_actions(params: Annotated[ActionQuery, Query()], db: Db, _: Reader) -> Page[TreatmentActionPublic]:
    """Treatment actions across the register, the soonest due first: what is being done, by whom, by when."""
    filters = queries.ActionFilter(
        owner=params.owner, status=params.status, risk=[service.risk_id(ref) for ref in params.risk],
        overdue=params.overdue, due_before=params.due_before,
    )  # fmt: skip
    with db.read() as session:
        items, next_cursor = queries.list_actions(session, filters, cursor=params.cursor, limit=params.limit)
        return Page(items=items, next_cursor=next_cursor)
