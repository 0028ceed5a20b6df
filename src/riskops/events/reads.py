"""The read model of the event stream: a page of GET /api/v1/events read with one statement into plain data and
serialised once to JSON bytes, exactly as FastAPI writes Page[EventPublic].

service.list_events and service.present over the ORM are the reference this must match byte for byte
(tests/events/test_reads.py); the response model stays the documented schema. Writes never come here."""

import json
from functools import cache
from typing import Any

import orjson
from sqlalchemy import Select, Text, cast, select
from sqlmodel import Session

from riskops.db import table_of
from riskops.events import service
from riskops.events.models import Event, message_id
from riskops.pagination import id_page

_EVENT = table_of(Event)

# pydantic writes an aware UTC datetime as ...Z, and so does orjson with OPT_UTC_Z.
_JSON_OPTIONS = orjson.OPT_UTC_Z


def read_page(
    session: Session, *, type_pattern: str | None = None, subject_id: str | None = None,
    cursor: str | None = None, limit: int = 100,
) -> bytes:  # fmt: skip
    """A page of the stream as Page[EventPublic] JSON: the filters, keyset and next_cursor of service.list_events
    (and its 422 for a cursor that is not one)."""
    clauses = service.list_filter(type_pattern=type_pattern, subject_id=subject_id, cursor=cursor)
    statement = _events().where(*clauses).order_by(_EVENT.c.id).limit(limit + 1)
    rows, following = id_page(list(session.connection().execute(statement).all()), limit)
    items = [
        {
            "id": event_id,
            "message_id": message_id(event_id),
            "type": event_type,
            "subject_type": subject_type,
            "subject_id": subject,
            "occurred_at": occurred_at,
            "data": _data(data),
        }
        for event_id, event_type, subject_type, subject, occurred_at, data in rows
    ]
    return orjson.dumps({"items": items, "next_cursor": following}, option=_JSON_OPTIONS)


@cache
def _events() -> Select[Any]:
    """The event's columns, its data as the stored JSON text. Built once: building costs more than running it."""
    columns = (_EVENT.c.id, _EVENT.c.type, _EVENT.c.subject_type, _EVENT.c.subject_id, _EVENT.c.occurred_at)
    return select(*columns, cast(_EVENT.c.data, Text))


def _data(text: str) -> Any:
    try:
        return orjson.loads(text)  # faster than the column type's json.loads, and the same values
    except orjson.JSONDecodeError:  # the json module wrote NaN or Infinity, which orjson does not read
        return json.loads(text)
