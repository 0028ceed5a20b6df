"""A risk's controls: library controls applied to the risk (or new ones made for it), their implementation on it
changed, and taken off it. Callers commit."""

from sqlmodel import Session

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import storable
from riskops.errors import Conflict, NotFound, Unprocessable, field_error
from riskops.risks import history, service
from riskops.risks.library import Control, ControlCreate, ControlUpdate, LibraryStatus, control_reference
from riskops.risks.models import Risk, RiskControl


def add_control(session: Session, risk: Risk, data: ControlCreate, who: Principal, settings: Settings) -> RiskControl:
    """Apply a library control to the risk (data.control_id), or a new one made from data's title and owner."""
    service.require_open(risk, "adding a control")
    if data.control_id is None:
        assert data.title is not None and data.owner is not None  # ControlCreate: a control_id, or these two
        control = Control(title=data.title, owner=data.owner)  # the library's defaults for the rest
        session.add(control)
        session.flush()
        created = audit.service.diff({}, history.library_state(control))
        history.record_control(session, control, "created", who, created, note=f"Made for {risk.reference}")
    else:
        control = _applicable(session, risk, data.control_id)
    applied = RiskControl(
        risk_id=risk.id, control_id=control.id, control=control, status=data.status, due_date=data.due_date
    )
    session.add(applied)
    session.flush()
    service.touch(session, risk)
    changes = {f"controls.{applied.id}": {"old": None, "new": history.control_state(applied)}}
    history.record(session, risk, "control.added", who, {}, settings, changes=changes)
    history.record_control(session, control, "applied", who, {"applied_to": {"old": None, "new": risk.reference}})
    session.flush()
    session.refresh(risk, ["controls"])
    return applied


def _applicable(session: Session, risk: Risk, control_id: int) -> Control:
    """The library control, active and not yet on the risk. Read FOR KEY SHARE: tests and edits of it go on
    meanwhile, its deletion waits for this transaction."""
    lock = {"read": True, "key_share": True}
    control = session.get(Control, control_id, with_for_update=lock) if storable(control_id) else None
    loc = ("body", "control_id")
    if control is None:
        raise Unprocessable(
            f"Control {control_reference(control_id)} does not exist.",
            errors=[field_error(loc, "no such control in the library")],
        )
    if control.status == LibraryStatus.retired:
        raise Conflict(
            f"Control {control.reference} is retired; reactivate it to apply it.", errors=[field_error(loc, "retired")]
        )
    if (applied := next((c for c in risk.controls if c.control_id == control_id), None)) is not None:
        raise Conflict(
            f"Control {control.reference} is already applied to {risk.reference}.",
            errors=[field_error(loc, "already applied to this risk")], application_id=applied.id,
        )  # fmt: skip
    return control


def _applied(session: Session, risk: Risk, control_id: int) -> RiskControl:
    applied = session.get(RiskControl, control_id) if storable(control_id) else None
    if applied is None or applied.risk_id != risk.id:
        raise NotFound(f"Control {control_id} does not exist on risk {risk.reference}.")
    return applied


def update_control(
    session: Session, risk: Risk, control_id: int, data: ControlUpdate, who: Principal, settings: Settings
) -> RiskControl:
    """The control's status and due date on the risk; a title or owner changes the library control itself."""
    service.require_open(risk, "changing its controls")
    applied = _applied(session, risk, control_id)
    before = history.control_state(applied)
    for name in data.model_fields_set:
        if getattr(data, name) is None and name != "due_date":
            raise Unprocessable(f"{name} cannot be null.", errors=[field_error(("body", name), "cannot be null")])
    library = {name: getattr(data, name) for name in ("title", "owner") if name in data.model_fields_set}
    if any(getattr(applied.control, name) != value for name, value in library.items()):
        control = applied.control
        session.refresh(control, with_for_update={"key_share": True})  # FOR NO KEY UPDATE: one edit at a time
        library_before = history.library_state(control)
        for name, value in library.items():
            setattr(control, name, value)
        control.version, control.updated_at = control.version + 1, utcnow()
        changes = audit.service.diff(library_before, history.library_state(control))
        history.record_control(session, control, "updated", who, changes, note=f"Through {risk.reference}")
    for name in data.model_fields_set & {"status", "due_date"}:
        setattr(applied, name, getattr(data, name))
    after = history.control_state(applied)
    if after != before:
        applied.updated_at = utcnow()
        session.add(applied)
        service.touch(session, risk)
        changes = {f"controls.{applied.id}.{k}": v for k, v in audit.service.diff(before, after).items()}
        history.record(session, risk, "control.updated", who, {}, settings, changes=changes)
        session.flush()
    return applied


def remove_control(session: Session, risk: Risk, control_id: int, who: Principal, settings: Settings) -> None:
    """Take a control off the risk; the library keeps it, with its tests."""
    service.require_open(risk, "changing its controls")
    applied = _applied(session, risk, control_id)
    changes = {f"controls.{applied.id}": {"old": history.control_state(applied), "new": None}}
    session.delete(applied)
    service.touch(session, risk)
    history.record(session, risk, "control.removed", who, {}, settings, changes=changes)
    unapplied = {"applied_to": {"old": risk.reference, "new": None}}
    history.record_control(session, applied.control, "unapplied", who, unapplied)
    session.flush()
    session.refresh(risk, ["controls"])
