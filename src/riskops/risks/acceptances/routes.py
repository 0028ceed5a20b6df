from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from riskops import audit
from riskops.audit.models import AuditEntryPublic
from riskops.auth import Config, Db, Reader, Writer
from riskops.clock import Moment
from riskops.pagination import Page
from riskops.risks.acceptances import queries, service
from riskops.risks.acceptances.models import (
    AcceptanceExtension,
    AcceptancePublic,
    AcceptanceRecord,
    AcceptanceRequest,
    AcceptanceStatus,
    AcceptanceSummary,
    Approval,
    Refusal,
)

router = APIRouter(prefix="/api/v1/acceptances", tags=["acceptances"])

IfMatch = Annotated[str | None, Header(description="The ETag you read; a stale one gets 412.")]


class AcceptanceQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: list[AcceptanceStatus] = Field(default_factory=list, description="Any of these (repeat the parameter).")
    risk: str | None = Field(default=None, max_length=20, description="Covering this risk (R-0042).")
    category: str | None = Field(default=None, max_length=100, description="Covering a risk of this category.")
    expiring_before: Moment | None = Field(default=None, description="Expiring (or proposed to) before then.")
    needs_reapproval: bool | None = None
    requested_by: str | None = Field(default=None, max_length=200, description="Matched without regard to case.")
    approved_by: str | None = Field(default=None, max_length=200, description="An approver; without regard to case.")
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


def _answer(response: Response, session: Session, acceptance: AcceptanceRecord) -> AcceptancePublic:
    response.headers["ETag"] = service.etag(acceptance)
    return queries.detail(session, acceptance)


@router.post("", status_code=status.HTTP_201_CREATED)
def request_acceptance(
    data: AcceptanceRequest, db: Db, who: Writer, config: Config, response: Response
) -> AcceptancePublic:
    """Ask for risks to be accepted until the proposed expiry; someone else approves or rejects it."""
    with db.write() as session:
        acceptance = service.request(session, data, who, config)
        response.headers["Location"] = f"{router.prefix}/{acceptance.reference}"
        return _answer(response, session, acceptance)


@router.get("")
def list_acceptances(params: Annotated[AcceptanceQuery, Query()], db: Db, _: Reader) -> Page[AcceptanceSummary]:
    """Who accepted what, until when, on whose approval: newest first."""
    filters = queries.AcceptanceFilter(**params.model_dump(exclude={"cursor", "limit"}))
    with db.read() as session:
        items, next_cursor = queries.list_acceptances(session, filters, cursor=params.cursor, limit=params.limit)
        return Page(items=items, next_cursor=next_cursor)


@router.get("/{ref}")
def get_acceptance(ref: str, db: Db, _: Reader, response: Response) -> AcceptancePublic:
    """The acceptance with its decisions and the state of each covered risk that the request and each decision
    applied to."""
    with db.read() as session:
        return _answer(response, session, service.get(session, ref))


@router.get("/{ref}/history")
def acceptance_history(
    ref: str, db: Db, _: Reader, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Page[AuditEntryPublic]:
    """Every change to the acceptance, oldest first."""
    with db.read() as session:
        acceptance = service.get(session, ref)
        rows, next_cursor = audit.service.list_entries(
            session, entity_type="acceptance", entity_id=str(acceptance.id), cursor=cursor or None, limit=limit
        )
        items = [AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows]
        return Page(items=items, next_cursor=next_cursor)


@router.post("/{ref}/approve")
def approve_acceptance(
    ref: str, data: Approval, db: Db, who: Writer, config: Config, response: Response, if_match: IfMatch = None
) -> AcceptancePublic:
    """Approve a request: not its requester; an admin above a category's appetite; beyond its tolerance two
    people, one an admin (the first approval leaves it requested)."""
    with db.write() as session:
        acceptance = service.get_for_change(session, ref, if_match)
        service.approve(session, acceptance, data, who, config)
        return _answer(response, session, acceptance)


@router.post("/{ref}/reject")
def reject_acceptance(
    ref: str, data: Refusal, db: Db, who: Writer, config: Config, response: Response, if_match: IfMatch = None
) -> AcceptancePublic:
    with db.write() as session:
        acceptance = service.get_for_change(session, ref, if_match)
        service.reject(session, acceptance, data, who, config)
        return _answer(response, session, acceptance)


@router.post("/{ref}/revoke")
def revoke_acceptance(
    ref: str, data: Refusal, db: Db, who: Writer, config: Config, response: Response, if_match: IfMatch = None
) -> AcceptancePublic:
    """End an acceptance in force (an admin or an approver): its risks go back to their plan, to be reassessed."""
    with db.write() as session:
        acceptance = service.get_for_change(session, ref, if_match)
        service.revoke(session, acceptance, data, who, config)
        return _answer(response, session, acceptance)


@router.post("/{ref}/extend", status_code=status.HTTP_201_CREATED)
def extend_acceptance(
    ref: str, data: AcceptanceExtension, db: Db, who: Writer, config: Config, response: Response,
    if_match: IfMatch = None,
) -> AcceptancePublic:  # fmt: skip
    """Request an extension (or a re-approval after a material change): a new request for the same risks; the
    acceptance stays in force until it is approved."""
    with db.write() as session:
        old = service.get_for_change(session, ref, if_match)
        acceptance = service.extend(session, old, data, who, config)
        response.headers["Location"] = f"{router.prefix}/{acceptance.reference}"
        return _answer(response, session, acceptance)
