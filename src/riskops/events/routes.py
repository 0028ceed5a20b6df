from typing import Annotated

from fastapi import APIRouter, Query

from riskops.auth import Db, Reader
from riskops.events import service
from riskops.events.models import EventPublic
from riskops.pagination import Page

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.get("")
def list_events(
    db: Db,
    _: Reader,
    type: Annotated[str | None, Query(description="An event type or a pattern such as incident.*")] = None,
    subject: Annotated[str | None, Query(description="A subject reference such as R-0042 or INC-0007")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[EventPublic]:
    """Every event, oldest first; follow new ones by passing back next_cursor."""
    with db.read() as session:
        rows, next_cursor = service.list_events(
            session, type_pattern=type, subject_id=subject, cursor=cursor, limit=limit
        )
        return Page(items=[service.present(e) for e in rows], next_cursor=next_cursor)
