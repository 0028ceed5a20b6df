from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from riskops import audit
from riskops.audit.models import AuditEntryPublic
from riskops.auth import Config, Db, Reader, Writer
from riskops.controls import queries, service
from riskops.controls.models import (
    ControlQuery,
    ControlTestCreate,
    ControlTestPublic,
    LibraryControlCreate,
    LibraryControlPublic,
    LibraryControlUpdate,
)
from riskops.pagination import Page

router = APIRouter(prefix="/api/v1/controls", tags=["controls"])

IfMatch = Annotated[str | None, Header(description="The ETag you read; a stale one gets 412.")]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_control(data: LibraryControlCreate, db: Db, who: Writer, response: Response) -> LibraryControlPublic:
    """A control in the library, to apply to risks (POST /risks/{ref}/controls with its id)."""
    with db.write() as session:
        control = service.create_control(session, data, who)
        response.headers["ETag"] = service.etag(control)
        response.headers["Location"] = f"{router.prefix}/{control.reference}"
        return queries.present(control, [], service.today())


@router.get("")
def list_controls(params: Annotated[ControlQuery, Query()], db: Db, _: Reader) -> Page[LibraryControlPublic]:
    """The library in reference order, each control with the risks it is applied to: effectiveness=ineffective
    answers which controls failed their latest test and what that exposes."""
    with db.read() as session:
        return queries.list_controls(session, params)


@router.get("/{control_ref}")
def get_control(control_ref: str, db: Db, _: Reader, response: Response) -> LibraryControlPublic:
    with db.read() as session:
        control = queries.read_control(session, control_ref)
    response.headers["ETag"] = f'"{control.version}"'
    return control


@router.patch("/{control_ref}")
def update_control(
    control_ref: str, data: LibraryControlUpdate, db: Db, who: Writer, response: Response, if_match: IfMatch = None
) -> LibraryControlPublic:
    """Title, owner and type show on every risk the control is applied to."""
    with db.write() as session:
        control = service.edit_control(session, service.get_for_change(session, control_ref, if_match), data, who)
        response.headers["ETag"] = service.etag(control)
        return queries.present(control, queries.linked_risks(session, [control.id])[control.id], service.today())


@router.delete("/{control_ref}", status_code=status.HTTP_204_NO_CONTENT)
def delete_control(control_ref: str, db: Db, who: Writer, if_match: IfMatch = None) -> Response:
    """Only a control applied to no risk and never tested (409 otherwise: retire it)."""
    with db.write() as session:
        service.delete_control(session, service.get_for_change(session, control_ref, if_match), who)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{control_ref}/history")
def control_history(
    control_ref: str, db: Db, _: Reader, cursor: str | None = None, limit: Limit = 100
) -> Page[AuditEntryPublic]:
    """Every change to the control, oldest first: who, when, which fields, old and new values; its tests; the
    risks it was applied to and taken off."""
    with db.read() as session:
        control = service.get_control(session, service.parse_control_ref(control_ref))
        rows, next_cursor = audit.service.list_entries(
            session, entity_type="control", entity_id=str(control.id), cursor=cursor or None, limit=limit
        )
        return Page(
            items=[AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows], next_cursor=next_cursor
        )


@router.post("/{control_ref}/tests", status_code=status.HTTP_201_CREATED)
def record_test(
    control_ref: str, data: ControlTestCreate, db: Db, who: Writer, config: Config, response: Response
) -> ControlTestPublic:
    """A test of the control: the latest one (by date) sets its effectiveness and next test due; an ineffective
    one makes every open risk it is applied to due for reassessment (control.found_ineffective names them)."""
    with db.write() as session:
        control = service.get_for_change(session, control_ref, None)
        test = service.record_test(session, control, data, who, config)
        response.headers["ETag"] = service.etag(control)
        return queries.present_test(test)


@router.get("/{control_ref}/tests")
def list_tests(
    control_ref: str, db: Db, _: Reader, cursor: str | None = None, limit: Limit = 50
) -> Page[ControlTestPublic]:
    """The latest test (by date) first."""
    with db.read() as session:
        return queries.list_tests(session, control_ref, cursor=cursor or None, limit=limit)
