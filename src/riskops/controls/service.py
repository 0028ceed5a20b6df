"""The control library's rules: defining, editing, retiring and deleting controls, and recording their tests, with
what an ineffective one means for the risks the control is applied to. Callers commit.

A control is applied to a risk, and made there from a title and an owner, by riskops.risks.applied_controls.add_control:
the register's side of it. Locks: a change here takes the control FOR NO KEY UPDATE, which lets a risk apply it
(FOR KEY SHARE) meanwhile; a deletion takes it FOR UPDATE, so that nothing is applied to or tests it meanwhile."""

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.controls import scheduled
from riskops.controls.models import (
    ControlTest,
    ControlTestCreate,
    ControlTestResult,
    LibraryControlCreate,
    LibraryControlUpdate,
)
from riskops.db import get_row
from riskops.errors import Conflict, NotFound, PreconditionFailed, Unprocessable, field_error, stale
from riskops.events import service as events
from riskops.notices import service as scheduler
from riskops.risks import history
from riskops.risks import service as risks
from riskops.risks.library import Control, Effectiveness, LibraryStatus
from riskops.risks.models import Risk, RiskControl, RiskStatus

_REFERENCE = re.compile(r"^(?:C-)?0*(\d{1,12})$", re.IGNORECASE)
# Fields a client may set to null: the others always have a value.
_NULLABLE = {"test_interval_days", "next_test_due"}


def parse_control_ref(ref: str) -> int:
    """Accept a numeric id or a reference such as C-0007."""
    match = _REFERENCE.match(ref.strip())
    if match is None:
        raise NotFound(f"'{ref}' is not a control id or reference (like 7 or C-0007).")
    return int(match.group(1))


def get_control(session: Session, control_id: int, *, for_update: bool = False) -> Control:
    lock = {"key_share": True} if for_update else None  # FOR NO KEY UPDATE
    return get_row(session, Control, control_id, "Control", with_for_update=lock)


def get_for_change(session: Session, ref: str, if_match: str | None) -> Control:
    """The control, locked for this transaction, provided it is still the version the caller read."""
    control = get_control(session, parse_control_ref(ref), for_update=True)
    if stale(if_match, etag(control)):
        raise PreconditionFailed(
            f"Control {control.reference} has changed since you read it (now version {control.version}); "
            "read it again and reapply your change.",
            current_version=control.version,
        )
    return control


def etag(control: Control) -> str:
    return f'"{control.version}"'


def today() -> date:
    return utcnow().date()


def due_for_testing(control: Control, on: date) -> bool:
    return control.status == LibraryStatus.active and control.next_test_due is not None and control.next_test_due <= on


def _due_after(interval: int | None, day: date) -> date | None:
    return None if interval is None else day + timedelta(days=interval)


def _touch(session: Session, control: Control) -> None:
    control.version += 1
    control.updated_at = utcnow()
    session.add(control)


# ---- the library ----


def create_control(session: Session, data: LibraryControlCreate, who: Principal) -> Control:
    fields = data.model_dump(exclude={"next_test_due"})
    control = Control(**fields, next_test_due=data.next_test_due or _due_after(data.test_interval_days, today()))
    session.add(control)
    session.flush()
    history.record_control(session, control, "created", who, audit.service.diff({}, history.library_state(control)))
    scheduled.plan_test_due(session, control)
    return control


def edit_control(session: Session, control: Control, data: LibraryControlUpdate, who: Principal) -> Control:
    before = history.library_state(control)
    fields = data.model_fields_set
    for name in fields:
        value = getattr(data, name)
        if value is None and name not in _NULLABLE:
            raise Unprocessable(f"{name} cannot be null.", errors=[field_error(("body", name), "cannot be null")])
        setattr(control, name, value)
    if "test_interval_days" in fields and "next_test_due" not in fields:
        control.next_test_due = _due_after(control.test_interval_days, control.last_tested_on or today())
    changes = audit.service.diff(before, history.library_state(control))
    if not changes:
        return control  # nothing changed: no new version, no history entry
    _touch(session, control)
    action = "updated"
    if "status" in changes:
        action = "retired" if control.status == LibraryStatus.retired else "reactivated"
    history.record_control(session, control, action, who, changes)
    scheduled.plan_test_due(session, control)
    session.flush()
    return control


def delete_control(session: Session, control: Control, who: Principal) -> None:
    """Only a control applied to no risk and never tested: one with a record is retired instead."""
    session.refresh(control, with_for_update=True)
    applied = session.exec(select(func.count()).where(RiskControl.control_id == control.id)).one()
    tested = session.exec(select(func.count()).where(ControlTest.control_id == control.id)).one()
    if applied or tested:
        raise Conflict(
            f"Control {control.reference} is applied to {applied} risk(s) and has {tested} test(s) on record; "
            "retire it instead (PATCH status=retired).",
            applied=applied, tests=tested,
        )  # fmt: skip
    history.record_control(session, control, "deleted", who, audit.service.diff(history.library_state(control), {}))
    scheduler.cancel(session, "control", control.id, scheduled.KINDS)
    session.delete(control)
    session.flush()


# ---- testing ----


def record_test(
    session: Session, control: Control, data: ControlTestCreate, who: Principal, settings: Settings
) -> ControlTest:
    """A test of the control. The latest test (by date) is the control's effectiveness and starts its next test
    interval; an ineffective one asks for every open risk it is applied to to be reassessed."""
    if control.status == LibraryStatus.retired:
        raise Conflict(f"Control {control.reference} is retired; reactivate it before recording a test.")
    if data.tested_on > (utcnow() + timedelta(hours=14)).date():  # later than today anywhere on Earth (UTC+14)
        raise Unprocessable(
            "A test is recorded once it has been done.", errors=[field_error(("body", "tested_on"), "in the future")]
        )
    test = ControlTest(control_id=control.id, **data.model_dump(), recorded_by=who.name)
    session.add(test)
    before = history.library_state(control)
    latest = control.last_tested_on is None or data.tested_on >= control.last_tested_on
    if latest:  # a test filed late, after a newer one, is kept as a record and changes nothing
        control.effectiveness = Effectiveness(data.result)
        control.last_tested_on = data.tested_on
        control.next_test_due = _due_after(control.test_interval_days, data.tested_on)
        _touch(session, control)
    session.flush()
    note = f"{data.result} on {data.tested_on.isoformat()}, tested by {data.tester}; evidence: {data.evidence_url}"
    changes = audit.service.diff(before, history.library_state(control))
    history.record_control(session, control, "tested", who, changes, note=note)
    scheduled.plan_test_due(session, control)
    tested = {
        **scheduled.event_data(control), "test_id": test.id, "tested_on": data.tested_on.isoformat(),
        "tester": data.tester, "result": str(data.result), "evidence_url": data.evidence_url, "latest": latest,
        "actor": who.name,
    }  # fmt: skip
    events.emit(session, "control.tested", "control", control.reference, tested)
    if latest and data.result == ControlTestResult.ineffective:
        exposed = _ask_for_reassessment(session, control, test, who, settings)
        events.emit(session, "control.found_ineffective", "control", control.reference, {**tested, "risks": exposed})
    return test


def _ask_for_reassessment(
    session: Session, control: Control, test: ControlTest, who: Principal, settings: Settings
) -> list[dict[str, Any]]:
    """Every open risk the control is applied to is due for review now; those risks, as the event names them."""
    linked = session.exec(
        select(RiskControl.risk_id)
        .join(Risk, col(Risk.id) == RiskControl.risk_id)
        .where(RiskControl.control_id == control.id, Risk.status == RiskStatus.open)
        .order_by(col(RiskControl.risk_id))
    ).all()
    locked = [risks.get_risk(session, risk_id, for_update=True) for risk_id in linked]  # in id order: no deadlock
    exposed = [risk for risk in locked if risk.status == RiskStatus.open]  # one closed meanwhile is exposed no more
    reason = f"Control {control.reference} ({control.title}) was found ineffective in its test of {test.tested_on}."
    extra = {"control": {"id": control.id, "reference": control.reference, "title": control.title}, "test_id": test.id}
    risks.request_reassessment(session, exposed, reason, who, settings, extra=extra)
    return [
        {"id": r.id, "reference": r.reference, "title": r.title, "level": r.level, "owner": r.owner} for r in exposed
    ]
