from typing import Annotated

from fastapi import APIRouter, Query

from riskops.audit import service
from riskops.audit.models import AuditEntryPublic
from riskops.auth import Db, Reader
from riskops.pagination import Page

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def list_audit(
    db: Db, _: Reader,
    entity_type: str | None = None, entity_id: str | None = None,
    cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[AuditEntryPublic]:  # fmt: skip
    """The whole append-only history, oldest first: for auditors."""
    with db.read() as session:
        rows, next_cursor = service.list_entries(
            session, entity_type=entity_type, entity_id=entity_id, cursor=cursor, limit=limit
        )
    return Page(items=[AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows], next_cursor=next_cursor)
