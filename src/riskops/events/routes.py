from typing import Annotated

from fastapi import APIRouter, Query, Response

from riskops.auth import Db, Reader
from riskops.events import reads
from riskops.events.models import EventPublic
from riskops.pagination import Page

router = APIRouter(prefix="/api/v1/events", tags=["events"])


# A hot read: JSON bytes from the read model's one statement, returned as a Response so that FastAPI neither
# validates nor serialises them again. response_model keeps Page[EventPublic] the documented schema.
@router.get("", response_model=Page[EventPublic])
def list_events(
    db: Db,
    _: Reader,
    type: Annotated[str | None, Query(description="An event type or a pattern such as incident.*")] = None,
    subject: Annotated[str | None, Query(description="A subject reference such as R-0042 or INC-0007")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Every event, oldest first; follow new ones by passing back next_cursor."""
    with db.read() as session:
        body = reads.read_page(session, type_pattern=type, subject_id=subject, cursor=cursor, limit=limit)
    return Response(body, media_type="application/json")
