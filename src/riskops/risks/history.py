"""A risk's history: the fields it records, the audit entry and events of every change, and the replay of that
append-only trail into the register as it stood at any moment. Callers commit."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.audit.models import AuditEntry
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import table_of
from riskops.events import service as events
from riskops.notices import service as scheduler
from riskops.risks import scheduled
from riskops.risks.library import Control
from riskops.risks.models import Risk, RiskControl, RiskStatus, reference

# The one declaration of what the history records of a risk (with its tags): what is diffed, and replayed.
AUDITED = (
    "title", "description", "type", "cause", "event", "consequence", "source", "objectives",
    "category", "owner", "status", "treatment", "matrix_version",
    "inherent_likelihood", "inherent_impact", "inherent_impacts", "inherent_score", "inherent_level",
    "residual_likelihood", "residual_impact", "residual_impacts", "residual_score", "residual_level",
    "target_likelihood", "target_impact", "target_score", "target_level", "target_date",
    "acceptance_approver", "acceptance_expires_at", "next_review_at", "next_review_set_by_hand",
    "last_reviewed_at", "closed_at", "closure_reason", "materialised_at", "score", "level",
    "outside_appetite", "beyond_tolerance", "target_within_appetite",
)  # fmt: skip


def risk_state(risk: Risk) -> dict[str, Any]:
    """The risk as its history records it now: what a change is diffed against."""
    return state_of(_columns(risk), risk.tags)


def _columns(risk: Risk) -> dict[str, Any]:
    return {name: getattr(risk, name) for name in AUDITED}


def state_of(columns: Mapping[str, Any], tags: Sequence[str]) -> dict[str, Any]:
    """What the history records of a risk: its audited columns (as stored) and tags, times as ISO text."""
    state: dict[str, Any] = {name: columns[name] for name in AUDITED}
    state["tags"] = list(tags)
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in state.items()}


def control_state(control: RiskControl) -> dict[str, Any]:
    """What the history records of a control applied to the risk, under `controls.<application id>`: the library
    control it is, with its title and owner then, and its status and due date on this risk."""
    return {
        "control_id": control.control_id,
        "title": control.control.title,
        "owner": control.control.owner,
        "status": str(control.status),
        "due_date": control.due_date.isoformat() if control.due_date else None,
    }


def library_state(control: Control) -> dict[str, Any]:
    """What the history of a library control (entity_type "control") records of it."""
    return {
        "title": control.title, "description": control.description, "type": str(control.type),
        "nature": str(control.nature), "owner": control.owner,
        "framework_references": list(control.framework_references),
        "test_interval_days": control.test_interval_days,
        "next_test_due": control.next_test_due.isoformat() if control.next_test_due else None,
        "last_tested_on": control.last_tested_on.isoformat() if control.last_tested_on else None,
        "effectiveness": str(control.effectiveness), "status": str(control.status),
    }  # fmt: skip


def record_control(
    session: Session, control: Control, action: str, who: Principal, changes: dict[str, Any], *, note: str | None = None
) -> None:
    """A change to a library control, in its own history. Here, as the register also makes library controls."""
    audit.service.record(
        session, entity_type="control", entity_id=control.id, action=action, actor=who.name, changes=changes, note=note
    )


def event_data(risk_id: int, columns: Mapping[str, Any], who: Principal, changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": risk_id, "reference": reference(risk_id), "title": columns["title"], "owner": columns["owner"],
        "category": columns["category"], "status": str(columns["status"]), "score": columns["score"],
        "level": columns["level"], "outside_appetite": columns["outside_appetite"],
        "beyond_tolerance": columns["beyond_tolerance"], "next_review_at": columns["next_review_at"].isoformat(),
        "actor": who.name, "changes": changes,
    }  # fmt: skip


# Beyond its category's tolerance, a risk must be escalated to an admin: an event admins' channels subscribe to.
BEYOND_TOLERANCE = "risk.beyond_tolerance"
# The event each action announces; any other action is a risk.updated.
EVENT_FOR = {
    "created": "risk.created", "assessed": "risk.assessed", "rescored": "risk.assessed", "closed": "risk.closed",
    "reopened": "risk.reopened", "materialised": "risk.materialised", "acceptance_voided": "risk.acceptance_voided",
    "reassessment_requested": "risk.reassessment_requested",
}  # fmt: skip


def record(
    session: Session, risk: Risk, action: str, who: Principal, before: dict[str, Any],
    settings: Settings, *, note: str | None = None, changes: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Every change to a risk: its audit entry, events and re-planned notices, all in the caller's transaction."""
    changes = changes if changes is not None else audit.service.diff(before, risk_state(risk))
    audit.service.record(
        session, entity_type="risk", entity_id=risk.id, action=action, actor=who.name, changes=changes, note=note
    )
    for event_type, data in _announcements(risk, action, who, before, changes, extra):
        events.emit(session, event_type, "risk", risk.reference, data)
    scheduled.plan_notices(session, risk, settings)
    if _owner_assigned(risk, action, before):
        scheduled.plan_owner_assigned(session, risk)


def record_all(
    session: Session, changed: Sequence[tuple[Risk, dict[str, Any]]], action: str, who: Principal,
    settings: Settings, outbox: events.Outbox, *, note: str | None = None,
) -> None:  # fmt: skip
    """`record` for several risks changed alike (each with its state before), in a few statements: one insert of
    audit entries, the events into the caller's outbox, the notices re-planned in one delete and one insert."""
    if not changed:
        return
    now = utcnow()
    entries: list[dict[str, Any]] = []
    planned: list[dict[str, Any]] = []
    for risk, before in changed:
        changes = audit.service.diff(before, risk_state(risk))
        entries.append({
            "entity_type": "risk", "entity_id": str(risk.id), "action": action, "actor": who.name, "at": now,
            "changes": changes, "note": note,
        })  # fmt: skip
        for event_type, data in _announcements(risk, action, who, before, changes, None):
            outbox.emit(event_type, "risk", risk.reference, data)
        if risk.status == RiskStatus.open:  # scheduled.plan_notices and plan_owner_assigned, as rows
            planned += scheduled.date_notices(risk.id, risk.next_review_at, settings)
            if _owner_assigned(risk, action, before):
                planned.append(scheduled.owner_assigned_notice(risk.id, risk.owner, risk.version, now))
    session.execute(insert(table_of(AuditEntry)), entries)
    scheduler.cancel_all(session, "risk", [risk.id for risk, _ in changed], scheduled.KINDS)
    scheduler.plan(session, planned)


def _announcements(
    risk: Risk, action: str, who: Principal, before: dict[str, Any], changes: dict[str, Any],
    extra: dict[str, Any] | None,
) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
    """The events a change announces: its own, and a level change."""
    data = event_data(risk.id, _columns(risk), who, changes)  # flushed: it has an id
    announced = [(EVENT_FOR.get(action, "risk.updated"), {**data, **(extra or {})})]
    if before and before.get("level") != risk.level:
        announced.append(("risk.level_changed", {**data, "old_level": before.get("level"), "new_level": risk.level}))
    if risk.beyond_tolerance and not before.get("beyond_tolerance"):
        announced.append((BEYOND_TOLERANCE, data))
    return announced


def _owner_assigned(risk: Risk, action: str, before: dict[str, Any]) -> bool:
    return action in ("created", "reopened") or bool(before and before.get("owner") != risk.owner)


# ---- replay ----


@dataclass
class RiskAsOf:
    state: dict[str, Any]  # the audited fields + "tags", as the history records them (times as ISO text)
    controls: dict[str, dict[str, Any]]  # control id (as text) -> its recorded fields


def states_as_of(session: Session, as_of: datetime) -> dict[int, RiskAsOf]:
    """Each risk recorded by `as_of` (by id), replayed from the append-only audit trail: any past moment works.

    A field never given a value since the risk was created is absent (a creation records no empty field)."""
    risks: dict[int, RiskAsOf] = {}
    history = session.exec(
        select(AuditEntry)
        .where(AuditEntry.entity_type == "risk", col(AuditEntry.at) <= as_of)
        .order_by(col(AuditEntry.id))
        .execution_options(yield_per=2000)
    )
    for entry in history:
        risk = risks.setdefault(int(entry.entity_id), RiskAsOf(state={}, controls={}))
        for key, change in entry.changes.items():
            if key.startswith("controls."):
                _, control_id, *field = key.split(".")
                if field:
                    risk.controls.setdefault(control_id, {})[field[0]] = change["new"]
                elif change["new"] is None:  # the control was taken off the risk
                    risk.controls.pop(control_id, None)
                else:
                    risk.controls[control_id] = dict(change["new"])
            else:
                risk.state[key] = change["new"]
    return risks
