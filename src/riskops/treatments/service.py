"""A risk's treatment plan: adding and changing its actions, each change in the risk's history with its event,
and the plan's completion asking the owner to reassess. Callers lock the risk and commit."""

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import get_row, storable
from riskops.errors import Conflict, InvalidTransition, NotFound, PreconditionFailed, Unprocessable, field_error, stale
from riskops.events import service as events
from riskops.risks import service as risks
from riskops.risks.library import Control
from riskops.risks.models import Risk, RiskStatus
from riskops.treatments import scheduled
from riskops.treatments.models import (
    FINISHED,
    OPEN,
    ActionCreate,
    ActionStatus,
    ActionUpdate,
    TreatmentAction,
    cost_of,
)

ADDED, UPDATED, COMPLETED = "treatment.action_added", "treatment.action_updated", "treatment.action_completed"
PLAN_COMPLETED = "treatment.plan_completed"
PLAN_COMPLETED_REASON = "Treatment plan completed: reassess the residual rating."
# Enough for any real plan; it bounds what a plan's summary reads.
MAX_ACTIONS = 500


def lock_risk(session: Session, ref: str) -> Risk:
    """The risk, locked for this transaction: its plan's changes (and its completion) happen one at a time."""
    return risks.get_risk(session, risks.parse_risk_ref(ref), for_update=True)


def risk_id(ref: str) -> int:
    """The id a risk reference names, refused (404) when no risk can have it, as a path's reference is."""
    number = risks.parse_risk_ref(ref)
    if not storable(number):
        raise NotFound(f"Risk {ref} does not exist.")
    return number


def get_action(session: Session, risk: Risk, action_id: int) -> TreatmentAction:
    action = get_row(session, TreatmentAction, action_id, "Treatment action")
    if action.risk_id != risk.id:
        raise NotFound(f"Treatment action {action_id} does not exist on risk {risk.reference}.")
    return action


def etag(action: TreatmentAction) -> str:
    return f'"{action.version}"'


def check_if_match(action: TreatmentAction, if_match: str | None) -> None:
    """Optimistic concurrency, as for risks: a change that names an older version is refused, not merged."""
    if stale(if_match, etag(action)):
        raise PreconditionFailed(
            f"Treatment action {action.id} has changed since you read it (now version {action.version}); "
            "read it again and reapply your change.",
            current_version=action.version,
        )


def _require_open(risk: Risk) -> None:
    """A closed risk's plan is a record of the past, as the risk is: it changes only once the risk is reopened."""
    if risk.status != RiskStatus.open:
        raise InvalidTransition(
            f"Risk {risk.reference} is closed; reopen it before changing its treatment plan.", allowed=["reopen"]
        )


def action_state(action: TreatmentAction) -> dict[str, Any]:
    """What the risk's history records of an action, under `treatment_actions.<id>`."""
    cost = cost_of(action)
    return {
        "title": action.title, "description": action.description, "owner": action.owner,
        "due_date": action.due_date.isoformat(), "cost": cost.model_dump(mode="json") if cost else None,
        "status": str(action.status), "control_id": action.control_id,
        "control_effect": str(action.control_effect) if action.control_effect else None,
        "closed_at": action.closed_at.isoformat() if action.closed_at else None, "closed_by": action.closed_by,
        "cancellation_reason": action.cancellation_reason,
    }  # fmt: skip


def _check_control(session: Session, control_id: int | None, effect: str | None) -> None:
    if control_id is not None and effect is None:
        raise Unprocessable(
            "Say whether the action creates or improves the control.",
            errors=[field_error(("body", "control_effect"), "required with control_id: creates or improves")],
        )
    if control_id is None and effect is not None:
        raise Unprocessable(
            "A control effect needs the control it applies to.",
            errors=[field_error(("body", "control_id"), "required with control_effect")],
        )
    if control_id is not None and (not storable(control_id) or session.get(Control, control_id) is None):
        raise Unprocessable(
            f"Control {control_id} is not in the control library.",
            errors=[field_error(("body", "control_id"), "not a control of the library (GET /api/v1/controls)")],
        )


def add_action(session: Session, risk: Risk, data: ActionCreate, who: Principal, settings: Settings) -> TreatmentAction:
    _require_open(risk)
    count = session.scalar(select(func.count()).where(col(TreatmentAction.risk_id) == risk.id)) or 0
    if count >= MAX_ACTIONS:
        raise Conflict(f"Risk {risk.reference}'s treatment plan has {count} actions, the most a plan may have.")
    _check_control(session, data.control_id, data.control_effect)
    action = TreatmentAction(
        risk_id=risk.id, title=data.title, description=data.description, owner=data.owner, due_date=data.due_date,
        cost_amount=data.cost.amount if data.cost else None, cost_currency=data.cost.currency if data.cost else None,
        status=data.status, control_id=data.control_id, control_effect=data.control_effect, created_by=who.name,
    )  # fmt: skip
    session.add(action)
    session.flush()
    changes = {f"treatment_actions.{action.id}": {"old": None, "new": action_state(action)}}
    _record(session, risk, action, "treatment_action.added", ADDED, who, changes)
    scheduled.plan_notices(session, action, settings)
    return action


# Fields a change may not set to null: they always have a value.
_REQUIRED = ("title", "description", "owner", "due_date", "status")


def update_action(
    session: Session, risk: Risk, action: TreatmentAction, data: ActionUpdate, who: Principal, settings: Settings
) -> TreatmentAction:
    """Change an action of an open risk's plan. Done or cancelled, it is final. Finishing the last open action
    with at least one done completes the plan: the owner is asked to reassess the risk."""
    _require_open(risk)
    wanted = _requested(data)
    if action.status in FINISHED:
        if "cancellation_reason" in data.model_fields_set:
            wanted["cancellation_reason"] = data.cancellation_reason
        if any(getattr(action, name) != value for name, value in wanted.items()):
            raise InvalidTransition(
                f"Treatment action {action.id} is {action.status}: a finished action is a record and does not "
                "change. Add a new action instead.",
                allowed=[],
            )
        return action
    status = wanted.get("status", action.status)
    if status == ActionStatus.cancelled and data.cancellation_reason is None:
        raise Unprocessable(
            "Say why the action is cancelled.",
            errors=[field_error(("body", "cancellation_reason"), "required to cancel an action")],
        )
    if status != ActionStatus.cancelled and data.cancellation_reason is not None:
        raise Unprocessable(
            "A cancellation reason is given only when cancelling the action.",
            errors=[field_error(("body", "cancellation_reason"), "only with status cancelled")],
        )
    _check_control(
        session, wanted.get("control_id", action.control_id), wanted.get("control_effect", action.control_effect)
    )
    before = action_state(action)
    for name, value in wanted.items():
        setattr(action, name, value)
    if status in FINISHED:
        action.closed_at, action.closed_by = utcnow(), who.name
        action.cancellation_reason = data.cancellation_reason
    changes = audit.service.diff(before, action_state(action))
    if not changes:
        return action  # nothing changed: no new version, no history entry
    action.version += 1
    action.updated_at = utcnow()
    session.add(action)
    changes = {f"treatment_actions.{action.id}.{name}": change for name, change in changes.items()}
    event = COMPLETED if status == ActionStatus.done else UPDATED
    _record(session, risk, action, "treatment_action.updated", event, who, changes, note=data.cancellation_reason)
    scheduled.plan_notices(session, action, settings)
    if status in FINISHED:
        _complete_plan(session, risk, who, settings)
    return action


def _requested(data: ActionUpdate) -> dict[str, Any]:
    """The columns a change sets, refusing null where a value is required."""
    wanted: dict[str, Any] = {}
    for name in data.model_fields_set - {"cancellation_reason"}:
        value = getattr(data, name)
        if name == "cost":
            wanted["cost_amount"] = value.amount if value else None
            wanted["cost_currency"] = value.currency if value else None
            continue
        if value is None and name in _REQUIRED:
            raise Unprocessable(f"{name} cannot be null.", errors=[field_error(("body", name), "cannot be null")])
        wanted[name] = value
    if "control_id" in wanted and wanted["control_id"] is None:
        wanted.setdefault("control_effect", None)  # no control, no effect on one
    return wanted


def _record(
    session: Session, risk: Risk, action: TreatmentAction, history_action: str, event: str, who: Principal,
    changes: dict[str, Any], *, note: str | None = None,
) -> None:  # fmt: skip
    """The change in the risk's history (what GET /risks/{ref}/history lists) and its event."""
    session.flush()
    audit.service.record(
        session, entity_type="risk", entity_id=risk.id, action=history_action, actor=who.name, changes=changes,
        note=note,
    )  # fmt: skip
    data = {**scheduled.action_data(risk, action), "actor": who.name, "changes": changes}
    events.emit(session, event, "risk", risk.reference, data)


def _complete_plan(session: Session, risk: Risk, who: Principal, settings: Settings) -> None:
    """When no action is left open and at least one is done, the plan is complete: announce it and ask the
    owner to reassess the residual rating."""
    counts = dict(
        session.exec(
            select(TreatmentAction.status, func.count())
            .where(col(TreatmentAction.risk_id) == risk.id)
            .group_by(col(TreatmentAction.status))
        ).all()
    )
    if any(counts.get(status, 0) for status in OPEN) or not counts.get(ActionStatus.done, 0):
        return
    plan = {"done": counts.get(ActionStatus.done, 0), "cancelled": counts.get(ActionStatus.cancelled, 0)}
    data = {
        "id": risk.id, "reference": risk.reference, "title": risk.title, "owner": risk.owner, "level": risk.level,
        "actions": plan, "actor": who.name,
    }  # fmt: skip
    events.emit(session, PLAN_COMPLETED, "risk", risk.reference, data)
    risks.request_reassessment(
        session, [risk], PLAN_COMPLETED_REASON, who, settings, extra={"treatment_plan": plan}
    )  # fmt: skip
