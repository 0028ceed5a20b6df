from typing import Any

from sqlmodel import Session, col, select

from riskops.audit.models import AuditEntry
from riskops.pagination import decode_id_cursor, id_page


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields that changed, each as {"old": ..., "new": ...}."""
    return {
        key: {"old": before.get(key), "new": after.get(key)}
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    }


def record(
    session: Session, *, entity_type: str, entity_id: object, action: str, actor: str,
    changes: dict[str, Any], note: str | None = None,
) -> AuditEntry:  # fmt: skip
    entry = AuditEntry(
        entity_type=entity_type, entity_id=str(entity_id), action=action, actor=actor, changes=changes, note=note
    )
    session.add(entry)
    return entry


def list_entries(
    session: Session, *, entity_type: str | None = None, entity_id: str | None = None,
    cursor: str | None = None, limit: int = 100,
) -> tuple[list[AuditEntry], str | None]:  # fmt: skip
    """Oldest first, so that a history reads in the order things happened."""
    query = select(AuditEntry).where(col(AuditEntry.id) > (decode_id_cursor(cursor) or 0))
    if entity_type is not None:
        query = query.where(AuditEntry.entity_type == entity_type)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    return id_page(list(session.exec(query.order_by(col(AuditEntry.id)).limit(limit + 1))), limit)
