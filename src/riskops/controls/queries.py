"""Reading the library: controls with the risks they are applied to (what a failed control exposes), and their
tests."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from riskops.controls.models import ControlQuery, ControlTest, ControlTestPublic, LibraryControlPublic, LinkedRisk
from riskops.controls.service import due_for_testing, get_control, parse_control_ref, today
from riskops.db import storable
from riskops.pagination import Page, decode_cursor, decode_id_cursor, encode_cursor, id_page, malformed_cursor
from riskops.risks.library import Control, LibraryStatus, control_reference
from riskops.risks.models import Risk, RiskControl, RiskStatus, reference


def list_controls(
    session: Session, query: ControlQuery, *, open_risks_only: bool = False
) -> Page[LibraryControlPublic]:
    """The library in reference order, filtered; each control with the risks it is applied to (the open ones only
    with `open_risks_only`)."""
    on = today()
    statement = select(Control).where(col(Control.id) > (decode_id_cursor(query.cursor) or 0))
    if query.effectiveness:
        statement = statement.where(col(Control.effectiveness).in_(query.effectiveness))
    if query.type:
        statement = statement.where(col(Control.type).in_(query.type))
    if query.status:
        statement = statement.where(col(Control.status).in_(query.status))
    if query.owner:  # SQLite's lower() is Python's here (riskops.db), as on PostgreSQL
        statement = statement.where(func.lower(Control.owner).in_({owner.strip().lower() for owner in query.owner}))
    if query.due is not None:
        due = and_(col(Control.status) == LibraryStatus.active, col(Control.next_test_due) <= on)
        statement = statement.where(due if query.due else or_(~due, col(Control.next_test_due).is_(None)))
    rows, next_cursor = id_page(
        list(session.exec(statement.order_by(col(Control.id)).limit(query.limit + 1))), query.limit
    )
    linked = linked_risks(session, [control.id for control in rows], open_only=open_risks_only)
    return Page(items=[present(control, linked[control.id], on) for control in rows], next_cursor=next_cursor)


def read_control(session: Session, ref: str) -> LibraryControlPublic:
    control = get_control(session, parse_control_ref(ref))
    return present(control, linked_risks(session, [control.id])[control.id], today())


def linked_risks(
    session: Session, control_ids: Sequence[int], *, open_only: bool = False
) -> dict[int, list[LinkedRisk]]:
    """The risks each control is applied to, by reference, in one statement."""
    found: dict[int, list[LinkedRisk]] = defaultdict(list)
    if not control_ids:
        return found
    statement = (
        select(RiskControl, Risk.title, Risk.status, Risk.level)
        .join(Risk, col(Risk.id) == RiskControl.risk_id)
        .where(col(RiskControl.control_id).in_(control_ids))
        .order_by(col(RiskControl.control_id), col(RiskControl.risk_id))
    )
    if open_only:
        statement = statement.where(Risk.status == RiskStatus.open)
    for applied, title, status, level in session.exec(statement):
        found[applied.control_id].append(
            LinkedRisk(
                id=applied.risk_id, reference=reference(applied.risk_id), title=title, status=status, level=level,
                application_id=applied.id, implementation=applied.status, due_date=applied.due_date,
            )
        )  # fmt: skip
    return found


def present(control: Control, risks: list[LinkedRisk], on: date) -> LibraryControlPublic:
    return LibraryControlPublic(
        id=control.id,
        reference=control.reference,
        title=control.title,
        description=control.description,
        type=control.type,
        nature=control.nature,
        owner=control.owner,
        framework_references=control.framework_references,
        test_interval_days=control.test_interval_days,
        next_test_due=control.next_test_due,
        due_for_testing=due_for_testing(control, on),
        last_tested_on=control.last_tested_on,
        effectiveness=control.effectiveness,
        status=control.status,
        version=control.version,
        created_at=control.created_at,
        updated_at=control.updated_at,
        risks=risks,
    )


def list_tests(session: Session, ref: str, *, cursor: str | None, limit: int) -> Page[ControlTestPublic]:
    """The control's tests, the latest (by date, then as recorded) first."""
    control = get_control(session, parse_control_ref(ref))
    statement = select(ControlTest).where(ControlTest.control_id == control.id)
    if cursor is not None:
        day, test_id = _test_cursor(cursor)
        statement = statement.where(
            or_(
                col(ControlTest.tested_on) < day, and_(col(ControlTest.tested_on) == day, col(ControlTest.id) < test_id)
            )
        )
    statement = statement.order_by(col(ControlTest.tested_on).desc(), col(ControlTest.id).desc()).limit(limit + 1)
    rows = list(session.exec(statement))
    following = None
    if len(rows) > limit:
        rows = rows[:limit]
        following = encode_cursor([rows[-1].tested_on.isoformat(), rows[-1].id])
    return Page(items=[present_test(test) for test in rows], next_cursor=following)


def _test_cursor(cursor: str) -> tuple[date, int]:
    values = decode_cursor(cursor)
    if len(values) != 2 or not isinstance(values[0], str) or not isinstance(values[1], int) or not storable(values[1]):
        raise malformed_cursor()
    try:
        return date.fromisoformat(values[0]), values[1]
    except ValueError as exc:
        raise malformed_cursor() from exc


def present_test(test: ControlTest) -> ControlTestPublic:
    return ControlTestPublic(
        id=test.id, control_id=test.control_id, control_reference=control_reference(test.control_id),
        tested_on=test.tested_on, tester=test.tester, result=test.result, evidence_url=test.evidence_url,
        notes=test.notes, recorded_by=test.recorded_by, recorded_at=test.recorded_at,
    )  # fmt: skip
