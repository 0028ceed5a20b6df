"""What happened on an incident, in order: appending to its timeline, and reading it back."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from riskops.apikeys.service import Principal
from riskops.db import table_of
from riskops.incidents.models import Incident, TimelineEntry
from riskops.pagination import decode_id_cursor, id_page


def record(session: Session, incident: Incident, who: Principal, kind: str, text: str, **data: object) -> TimelineEntry:
    entry = TimelineEntry(incident_id=incident.id, actor=who.name, kind=kind, text=text, data=data)
    session.add(entry)
    return entry


def entry(incident: Incident, who: Principal, kind: str, text: str, at: datetime, **data: object) -> dict[str, Any]:
    """An entry as a row, for record_all."""
    return {"incident_id": incident.id, "at": at, "actor": who.name, "kind": kind, "text": text, "data": data}


def record_all(session: Session, entries: Sequence[dict[str, Any]]) -> None:
    """Append several entries, in order, with one insert."""
    if entries:
        session.execute(insert(table_of(TimelineEntry)), list(entries))


def add_note(session: Session, incident: Incident, text: str, who: Principal) -> TimelineEntry:
    return record(session, incident, who, "note", text)


def timeline(
    session: Session, incident: Incident, *, cursor: str | None = None, limit: int = 200
) -> tuple[list[TimelineEntry], str | None]:
    query = select(TimelineEntry).where(TimelineEntry.incident_id == incident.id)
    after = decode_id_cursor(cursor)
    if after is not None:
        query = query.where(col(TimelineEntry.id) > after)
    return id_page(list(session.exec(query.order_by(col(TimelineEntry.id)).limit(limit + 1))), limit)
