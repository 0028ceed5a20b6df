"""The read model of incidents: an incident and a page of the incident list, each read with one statement into
plain data and serialised once to JSON bytes, exactly as FastAPI writes IncidentPublic and
Page[IncidentSummaryPublic].

An incident's linked risks, roles, steps and communications come as JSON sub-selects of that one statement, so
a plan of any size costs one round trip. queries.present and queries.list_incidents over the ORM are the
reference this must match byte for byte (tests/incidents/test_reads.py); the response models stay the
documented schema. Writes never come here."""

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, Table, Text, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlmodel import Session

from riskops.clock import now as utcnow
from riskops.crisis import Severity
from riskops.db import storable, table_of, utc_from_json
from riskops.errors import NotFound
from riskops.incidents import queries, service
from riskops.incidents.models import (
    UNFINISHED_STEP,
    UNSENT_MESSAGE,
    Incident,
    IncidentMessage,
    IncidentRisk,
    IncidentRole,
    IncidentState,
    IncidentStep,
    reference,
)
from riskops.pagination import id_page
from riskops.risks.models import reference as risk_reference

_INCIDENT = table_of(Incident)
_LINK = table_of(IncidentRisk)
_ROLE = table_of(IncidentRole)
_STEP = table_of(IncidentStep)
_MESSAGE = table_of(IncidentMessage)

# IncidentSummaryPublic's columns, in the order _summary unpacks them; IncidentPublic adds _DETAIL_COLUMNS.
_COLUMNS = (
    "id", "title", "severity", "state", "is_exercise", "playbook_slug", "playbook_version", "declared_at", "breach_at",
)  # fmt: skip
_DETAIL_COLUMNS = (
    "description", "declared_by", "detected_at", "acknowledged_at", "acknowledged_by", "acknowledged_automatically",
    "mitigated_at", "resolved_at", "closed_at", "rto_minutes", "mtpd_minutes", "mtpd_at", "summary",
    "objectives_met", "version",
)  # fmt: skip
# The nested rows as JSON arrays: their sort keys first, then RolePublic's, StepPublic's and MessagePublic's fields.
_ROLE_COLUMNS = ("id", "key", "title", "instructions", "required", "assignee", "assigned_at")
_STEP_COLUMNS = (
    "position", "id", "key", "title", "instructions", "role", "depends_on", "due_at", "required", "status",
    "assignee", "started_at", "finished_at", "finished_by", "skip_reason",
)  # fmt: skip
_MESSAGE_COLUMNS = (
    "position", "id", "key", "audience", "title", "role", "channel", "body", "due_at", "required", "status",
    "sent_at", "sent_by",
)  # fmt: skip

# The moves open from each state, as IncidentPublic lists them.
_ALLOWED = {str(state): sorted(moves) for state, moves in service.TRANSITIONS.items()}

# pydantic writes an aware UTC datetime as ...Z, and so does orjson with OPT_UTC_Z.
_JSON_OPTIONS = orjson.OPT_UTC_Z


def read_incident(session: Session, incident_ref: str) -> bytes:
    """The incident as GET /api/v1/incidents/{ref} shows it, or a 404 as service.get_incident raises it."""
    incident_id = service.parse_incident_ref(incident_ref)
    connection = session.connection()
    dialect = connection.dialect.name
    row = connection.execute(_by_id(dialect), {"incident_id": incident_id}).first() if storable(incident_id) else None
    if row is None:
        raise NotFound(f"Incident {incident_id} does not exist.")
    return orjson.dumps(_present(row, utcnow(), ordered=dialect == "postgresql"), option=_JSON_OPTIONS)


def read_page(
    session: Session, *, exercise: bool = False, state: Sequence[IncidentState] = (),
    severity: Sequence[Severity] = (), playbook: str | None = None, risk: str | None = None, q: str | None = None,
    cursor: str | None = None, limit: int = 50,
) -> bytes:  # fmt: skip
    """A page of the incident list as Page[IncidentSummaryPublic] JSON: the filters, keyset and next_cursor of
    queries.list_incidents (and its 404 and 422 answers)."""
    clauses = queries.list_filter(exercise=exercise, state=state, severity=severity, playbook=playbook, risk=risk, q=q)
    newest_first = _INCIDENT.c.id.desc()
    page = select(_INCIDENT.c.id).where(*clauses, *queries.before_cursor(cursor))
    # The page's ids first, then their details: the sub-select runs for its rows, not for every row it passes.
    page_ids = page.order_by(newest_first).limit(limit + 1).subquery("page")
    connection = session.connection()
    dialect = connection.dialect.name
    statement = _summaries(dialect).join_from(_INCIDENT, page_ids, _INCIDENT.c.id == page_ids.c.id)
    rows, following = id_page(list(connection.execute(statement.order_by(newest_first)).all()), limit)
    ordered = dialect == "postgresql"
    items = [_summary(row, _risk_ids(row[len(_COLUMNS)], ordered)) for row in rows]
    return orjson.dumps({"items": items, "next_cursor": following}, option=_JSON_OPTIONS)


# ---- the statements, built once per database: building one costs more than running it ----


@cache
def _summaries(dialect: str) -> Select[Any]:
    """The list's columns and the linked risks' ids as JSON text."""
    return select(*(_INCIDENT.c[name] for name in _COLUMNS), _risk_ids_json(dialect))


@cache
def _by_id(dialect: str) -> Select[Any]:
    """One incident with its linked risks, roles, steps and communications, each a correlated sub-select."""
    steps: list[ColumnElement[Any]] = [_STEP.c[name] for name in _STEP_COLUMNS]
    if dialect == "sqlite":  # a JSON column is text there: json() nests it as JSON, not as a string
        steps[_STEP_COLUMNS.index("depends_on")] = func.json(_STEP.c.depends_on)
    messages = [_MESSAGE.c[name] for name in _MESSAGE_COLUMNS]
    return select(
        *(_INCIDENT.c[name] for name in _COLUMNS + _DETAIL_COLUMNS),
        _risk_ids_json(dialect),
        _rows_json(dialect, _ROLE, [_ROLE.c[name] for name in _ROLE_COLUMNS], [_ROLE.c.id]),
        _rows_json(dialect, _STEP, steps, [_STEP.c.position, _STEP.c.id]),
        _rows_json(dialect, _MESSAGE, messages, [_MESSAGE.c.position, _MESSAGE.c.id]),
    ).where(_INCIDENT.c.id == bindparam("incident_id"))


def _risk_ids_json(dialect: str) -> ColumnElement[Any]:
    risk_id = _LINK.c.risk_id
    aggregate: ColumnElement[Any]
    if dialect == "postgresql":
        # Cast to text: orjson parses it faster than the driver's json loader would.
        aggregate = cast(func.json_agg(aggregate_order_by(risk_id, risk_id)), Text)
    else:
        aggregate = func.json_group_array(risk_id)
    return select(aggregate).where(_LINK.c.incident_id == _INCIDENT.c.id).scalar_subquery()


def _rows_json(
    dialect: str, table: Table, columns: Sequence[ColumnElement[Any]], order: Sequence[ColumnElement[Any]]
) -> ColumnElement[Any]:
    """The incident's rows of `table` as a JSON array of arrays, in `order` on PostgreSQL. SQLite before 3.44 has
    no ORDER BY inside an aggregate: each array starts with its sort keys, and _sorted orders these few rows."""
    aggregate: ColumnElement[Any]
    if dialect == "postgresql":
        aggregate = cast(func.json_agg(aggregate_order_by(func.json_build_array(*columns), *order)), Text)
    else:
        aggregate = func.json_group_array(func.json_array(*columns))
    return select(aggregate).where(table.c.incident_id == _INCIDENT.c.id).scalar_subquery()


# ---- rows to IncidentSummaryPublic and IncidentPublic ----


def _summary(row: Sequence[Any], risk_ids: list[str]) -> dict[str, Any]:
    """The first columns of a row as IncidentSummaryPublic's fields, in its order (queries.summarise)."""
    columns = row[: len(_COLUMNS)]
    incident_id, title, severity, state, is_exercise, playbook, playbook_version, declared_at, breach_at = columns
    return {
        "id": incident_id,
        "reference": reference(incident_id),
        "title": title,
        "severity": severity,
        "state": state,
        "exercise": is_exercise,
        "playbook": playbook,
        "playbook_version": playbook_version,
        "declared_at": declared_at,
        "breach_at": breach_at,
        "risk_ids": risk_ids,
    }


def _present(row: Sequence[Any], now: datetime, *, ordered: bool) -> dict[str, Any]:
    """A row of _by_id as IncidentPublic's fields, in its order (queries.present on the ORM path).
    `ordered`: the database aggregated the nested rows in order; else they are sorted here."""
    (
        description, declared_by, detected_at, acknowledged_at, acknowledged_by, acknowledged_automatically,
        mitigated_at, resolved_at, closed_at, rto_minutes, mtpd_minutes, mtpd_at, summary, objectives_met, version,
        risks_json, roles_json, steps_json, messages_json,
    ) = row[len(_COLUMNS):]  # fmt: skip
    incident = _summary(row, _risk_ids(risks_json, ordered))
    declared_at, breach_at = incident["declared_at"], incident["breach_at"]
    roles = [_role(r) for r in _sorted(roles_json, 1, ordered)]

    def seconds(end: datetime | None) -> float | None:
        return None if end is None else (end - declared_at).total_seconds()

    return {
        **incident,
        "description": description,
        "declared_by": declared_by,
        "detected_at": detected_at,
        "acknowledged_at": acknowledged_at,
        "acknowledged_by": acknowledged_by,
        "acknowledged_automatically": acknowledged_automatically,
        "mitigated_at": mitigated_at,
        "resolved_at": resolved_at,
        "closed_at": closed_at,
        "rto_minutes": rto_minutes,
        "mtpd_minutes": mtpd_minutes,
        "mtpd_at": mtpd_at,
        "allowed_transitions": _ALLOWED[incident["state"]],
        "unfilled_required_roles": [r["key"] for r in roles if r["required"] and r["assignee"] is None],
        "measures": {  # service.measures
            "time_to_acknowledge_seconds": None if acknowledged_automatically else seconds(acknowledged_at),
            "time_to_resolve_seconds": seconds(resolved_at),
            "rto_met": service.rto_met(breach_at, resolved_at, now),
            "breached": service.deadline_met(breach_at, resolved_at, now) is False,
            "mtpd_exceeded": service.deadline_met(mtpd_at, resolved_at, now) is False,
        },
        "summary": _closure(summary) if summary else None,
        "objectives_met": objectives_met,
        "roles": roles,
        "steps": [_step(s, now) for s in _sorted(steps_json, 2, ordered)],
        "communications": [_message(m, now) for m in _sorted(messages_json, 2, ordered)],
        "version": version,
    }


def _risk_ids(risks_json: str | None, ordered: bool) -> list[str]:
    if risks_json is None:  # PostgreSQL aggregates no rows to NULL
        return []
    risk_ids: list[int] = orjson.loads(risks_json)
    return [risk_reference(risk_id) for risk_id in (risk_ids if ordered else sorted(risk_ids))]


def _sorted(rows_json: str | None, keys: int, ordered: bool) -> list[list[Any]]:
    """The nested rows, in order, without the `keys` sort keys they start with."""
    if rows_json is None:
        return []
    rows: list[list[Any]] = orjson.loads(rows_json)
    if not ordered:
        rows.sort(key=lambda r: r[:keys])
    return [r[keys:] for r in rows]


def _role(row: list[Any]) -> dict[str, Any]:
    key, title, instructions, required, assignee, assigned_at = row
    return {
        "key": key,
        "title": title,
        "instructions": instructions,
        "required": bool(required),  # SQLite's JSON has 0 and 1
        "assignee": assignee,
        "assigned_at": _utc_or_none(assigned_at),
    }


def _step(row: list[Any], now: datetime) -> dict[str, Any]:
    (
        key, title, instructions, role, depends_on, due_at, required, status, assignee, started_at, finished_at,
        finished_by, skip_reason,
    ) = row  # fmt: skip
    due = utc_from_json(due_at)
    return {
        "key": key,
        "title": title,
        "instructions": instructions,
        "role": role,
        "depends_on": depends_on,
        "due_at": due,
        "required": bool(required),
        "status": status,
        "assignee": assignee,
        "started_at": _utc_or_none(started_at),
        "finished_at": _utc_or_none(finished_at),
        "finished_by": finished_by,
        "skip_reason": skip_reason,
        # Owed and past due, whatever the incident's state, as queries.present has it.
        "overdue": status in UNFINISHED_STEP and due < now,
    }


def _message(row: list[Any], now: datetime) -> dict[str, Any]:
    key, audience, title, role, channel, body, due_at, required, status, sent_at, sent_by = row
    due = utc_from_json(due_at)
    return {
        "key": key,
        "audience": audience,
        "title": title,
        "role": role,
        "channel": channel,
        "body": body,
        "due_at": due,
        "required": bool(required),
        "status": status,
        "sent_at": _utc_or_none(sent_at),
        "sent_by": sent_by,
        "overdue": status in UNSENT_MESSAGE and due < now,
    }


def _closure(summary: dict[str, Any]) -> dict[str, Any]:
    """The stored post-incident summary (PostIncidentSummary.model_dump in JSON mode) in that model's order."""
    return {
        "what_happened": summary["what_happened"],
        "impact": summary["impact"],
        "root_cause": summary["root_cause"],
        "follow_up_actions": [
            {
                "title": action["title"],
                "owner": action["owner"],
                "due_date": action.get("due_date"),  # ISO date text, as pydantic writes a date
                "control_for": action.get("control_for"),
            }
            for action in summary.get("follow_up_actions", [])
        ],
        "objectives_met": summary.get("objectives_met"),
    }


def _utc_or_none(text: str | None) -> datetime | None:
    return None if text is None else utc_from_json(text)
