"""The read model of the register: a risk and a page of the risk list, each read with one statement into plain
data and serialised once to JSON bytes, exactly as FastAPI writes RiskPublic and Page[RiskPublic].

presentation.present over the ORM is the reference this must match byte for byte (tests/risks/test_reads.py);
the response models stay the documented schema. Writes never come here."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, Text, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlmodel import Session

from riskops.clock import now as utcnow
from riskops.db import storable, table_of, utc_from_json
from riskops.errors import NotFound
from riskops.risks import service
from riskops.risks.appetite.models import appetite_response
from riskops.risks.library import Control, control_reference
from riskops.risks.models import Risk, RiskControl, RiskTag, reference, statement
from riskops.risks.queries import RiskFilter, SortKey, after_cursor, check_filter, next_cursor, ordering
from riskops.risks.scoring import is_overdue

_RISK = table_of(Risk)
_TAG = table_of(RiskTag)
_CONTROL = table_of(RiskControl)
_LIBRARY = table_of(Control)

# The risk's own columns, in the order _present unpacks them.
_COLUMNS = (
    "id", "title", "description", "type", "cause", "event", "consequence", "source", "objectives",
    "category", "owner", "status", "treatment", "matrix_version",
    "inherent_likelihood", "inherent_impact", "inherent_impacts", "inherent_score", "inherent_level",
    "residual_likelihood", "residual_impact", "residual_impacts", "residual_score", "residual_level",
    "target_likelihood", "target_impact", "target_score", "target_level", "target_date",
    "score", "level", "outside_appetite", "beyond_tolerance", "target_within_appetite",
    "acceptance_approver", "acceptance_expires_at",
    "created_at", "updated_at", "last_reviewed_at", "next_review_at", "next_review_set_by_hand",
    "closed_at", "closure_reason", "materialised_at", "version", "kri_status",
)  # fmt: skip
# A control applied to the risk as a JSON array in the sub-select, in ControlPublic's field order (less the
# reference, made from the id): the application's columns, and those of its library control.
_CONTROL_COLUMNS = (
    _CONTROL.c.id, _CONTROL.c.control_id, _LIBRARY.c.title, _LIBRARY.c.owner, _LIBRARY.c.type,
    _LIBRARY.c.effectiveness, _CONTROL.c.status, _CONTROL.c.due_date, _CONTROL.c.created_at, _CONTROL.c.updated_at,
)  # fmt: skip

# pydantic writes an aware UTC datetime as ...Z, and so does orjson with OPT_UTC_Z.
_JSON_OPTIONS = orjson.OPT_UTC_Z


@dataclass(frozen=True)
class RiskJson:
    """A risk as the API answers it: the JSON body and its ETag."""

    body: bytes
    etag: str


def read_risk(session: Session, risk_id: int) -> RiskJson:
    """The risk as GET /api/v1/risks/{id} shows it, or a 404 as service.get_risk raises it."""
    connection = session.connection()
    statement = _by_id(connection.dialect.name)
    row = connection.execute(statement, {"risk_id": risk_id}).first() if storable(risk_id) else None
    if row is None:
        raise NotFound(f"Risk {risk_id} does not exist.")
    risk = _present(row, utcnow(), ordered=connection.dialect.name == "postgresql")
    return RiskJson(orjson.dumps(risk, option=_JSON_OPTIONS), service.etag_of(risk["version"]))


def read_page(
    session: Session, filters: RiskFilter, *, sort: SortKey = "-score", cursor: str | None = None, limit: int = 50
) -> bytes:
    """A page of the risk list as Page[RiskPublic] JSON: the filters, keyset and next_cursor of queries.list_risks."""
    check_filter(session, filters)
    now = utcnow()
    name = sort.lstrip("-")
    order = ordering(sort, _RISK.c[name], _RISK.c.id)
    keyset = after_cursor(sort, cursor, _RISK.c[name], _RISK.c.id)
    page = select(_RISK.c.id).where(*filters.clauses(session, now), *keyset)
    # The page's ids first, then their details: the sub-selects run for its rows, not for every row the sort visits.
    page_ids = page.order_by(*order).limit(limit + 1).subquery("page")
    connection = session.connection()
    statement = _with_details(connection.dialect.name).join_from(_RISK, page_ids, _RISK.c.id == page_ids.c.id)
    rows = connection.execute(statement.order_by(*order)).all()
    following = None
    if len(rows) > limit:
        rows = rows[:limit]
        following = next_cursor(sort, rows[-1][_COLUMNS.index(name)], rows[-1][0])
    ordered = connection.dialect.name == "postgresql"
    items = [_present(row, now, ordered=ordered) for row in rows]
    return orjson.dumps({"items": items, "next_cursor": following}, option=_JSON_OPTIONS)


@cache
def _by_id(dialect: str) -> Select[Any]:
    """One risk with its details. Statements are built once per database: building one costs more than running it."""
    return _with_details(dialect).where(_RISK.c.id == bindparam("risk_id"))


@cache
def _with_details(dialect: str) -> Select[Any]:
    """The risk's columns with its tags and controls as JSON text, each a correlated sub-select."""
    risk_id = _RISK.c.id
    tags: ColumnElement[Any]
    controls: ColumnElement[Any]
    if dialect == "postgresql":
        # Cast to text: orjson parses it faster than the driver's json loader would.
        tags = cast(func.json_agg(aggregate_order_by(_TAG.c.tag, _TAG.c.tag)), Text)
        controls = cast(
            func.json_agg(aggregate_order_by(func.json_build_array(*_CONTROL_COLUMNS), _CONTROL.c.id)), Text
        )
    else:
        # SQLite before 3.44 has no ORDER BY inside an aggregate: _present sorts these few rows itself.
        tags = func.json_group_array(_TAG.c.tag)
        controls = func.json_group_array(func.json_array(*_CONTROL_COLUMNS))
    return select(
        *(_RISK.c[name] for name in _COLUMNS),
        select(tags).where(_TAG.c.risk_id == risk_id).scalar_subquery(),
        select(controls)
        .select_from(_CONTROL.join(_LIBRARY, _LIBRARY.c.id == _CONTROL.c.control_id))
        .where(_CONTROL.c.risk_id == risk_id)
        .scalar_subquery(),
    )


def _present(row: Sequence[Any], now: datetime, *, ordered: bool) -> dict[str, Any]:
    """A row of _with_details as RiskPublic's fields, in its order (presentation.present on the ORM path).
    `ordered`: the database aggregated tags and controls in order; else they are sorted here."""
    (
        risk_id, title, description, risk_type, cause, event, consequence, source, objectives,
        category, owner, status, treatment, matrix_version,
        inherent_likelihood, inherent_impact, inherent_impacts, inherent_score, inherent_level,
        residual_likelihood, residual_impact, residual_impacts, residual_score, residual_level,
        target_likelihood, target_impact, target_score, target_level, target_date,
        score, level, outside_appetite, beyond_tolerance, target_within_appetite,
        acceptance_approver, acceptance_expires_at,
        created_at, updated_at, last_reviewed_at, next_review_at, next_review_set_by_hand,
        closed_at, closure_reason, materialised_at, version, kri_status, tags_json, controls_json,
    ) = row  # fmt: skip
    acceptance = None
    if acceptance_approver is not None and acceptance_expires_at is not None:
        acceptance = {
            "approver": acceptance_approver,
            "expires_at": acceptance_expires_at,
            "expired": acceptance_expires_at <= now,
        }
    residual = None
    if residual_likelihood is not None:
        residual = {"likelihood": residual_likelihood, "impact": residual_impact, "score": residual_score,
                    "level": residual_level, "impacts": residual_impacts}  # fmt: skip
    target = None
    if target_likelihood is not None:
        target = {"likelihood": target_likelihood, "impact": target_impact, "score": target_score,
                  "level": target_level, "date": target_date}  # fmt: skip
    return {
        "id": risk_id,
        "reference": reference(risk_id),
        "title": title,
        "description": description,
        "type": risk_type,
        "cause": cause,
        "event": event,
        "consequence": consequence,
        "statement": statement(risk_type, cause, event, consequence),
        "source": source,
        "objectives": objectives,
        "category": category,
        "owner": owner,
        "status": status,
        "treatment": treatment,
        "tags": _tags(tags_json, ordered),
        "matrix_version": matrix_version,
        "inherent": {
            "likelihood": inherent_likelihood,
            "impact": inherent_impact,
            "score": inherent_score,
            "level": inherent_level,
            "impacts": inherent_impacts,
        },  # fmt: skip
        "residual": residual,
        "target": target,
        "score": score,
        "level": level,
        "outside_appetite": bool(outside_appetite),
        "beyond_tolerance": bool(beyond_tolerance),
        "appetite_response": appetite_response(
            bool(outside_appetite), bool(target_within_appetite), acceptance_expires_at, now
        ),
        "acceptance": acceptance,
        "controls": _controls(controls_json, ordered),
        "created_at": created_at,
        "updated_at": updated_at,
        "last_reviewed_at": last_reviewed_at,
        "next_review_at": next_review_at,
        "next_review_set_by_hand": next_review_set_by_hand,
        "overdue": is_overdue(status, next_review_at, now),
        "closed_at": closed_at,
        "closure_reason": closure_reason,
        "materialised_at": materialised_at,
        "version": version,
        "kri_status": kri_status,
    }


def _tags(tags_json: str | None, ordered: bool) -> list[str]:
    if tags_json is None:  # PostgreSQL aggregates no rows to NULL
        return []
    tags: list[str] = orjson.loads(tags_json)
    # The ORM orders by the column's collation: json_agg's ORDER BY on PostgreSQL; on SQLite it is BINARY,
    # code-point order, which is Python's.
    return tags if ordered else sorted(tags)


def _controls(controls_json: str | None, ordered: bool) -> list[dict[str, Any]]:
    if controls_json is None:
        return []
    rows: list[list[Any]] = orjson.loads(controls_json)
    if not ordered:
        rows.sort(key=lambda control: control[0])  # by id, as the relationship orders them
    return [
        {
            "id": applied_id,
            "control_id": control_id,
            "control_reference": control_reference(control_id),
            "title": title,
            "owner": owner,
            "type": kind,
            "effectiveness": effectiveness,
            "status": status,
            "due_date": due_date,  # ISO date text on both databases, as pydantic writes a date
            "created_at": utc_from_json(created_at),
            "updated_at": utc_from_json(updated_at),
        }
        for applied_id, control_id, title, owner, kind, effectiveness, status, due_date, created_at, updated_at in rows
    ]
