"""What a snapshot keeps beside the register: the acceptances in force or decided, with who approved them until
when, and the control tests recorded in the period, read from their append-only records as of the snapshot; and
the business processes with whether their RTO can be met and the risks that threaten them, and the open risks'
treatment plans, as they stand when the snapshot is taken (these keep a history, not a replay)."""

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from riskops.continuity import graph, recovery
from riskops.continuity.models import BusinessProcess, Standing
from riskops.controls.models import ControlTest, ControlTestResult
from riskops.kris.models import Kri, KriRisk, KriThreshold, KriTransition, KriValue
from riskops.quant import analysis as quant
from riskops.risks.acceptances import queries
from riskops.risks.acceptances.models import AcceptanceRecord, AcceptanceStatus
from riskops.risks.library import Control, control_reference
from riskops.risks.models import Risk, RiskControl, RiskStatus, reference
from riskops.treatments import queries as treatments
from riskops.treatments.models import ActionStatus, TreatmentAction


def acceptances(session: Session, start: datetime, as_of: datetime) -> list[dict[str, Any]]:
    """Every acceptance requested by `as_of` that was not over before `start`: its risks, who asked and approved,
    its expiry, and its status as it stood at `as_of` (a later decision does not show)."""
    records = session.exec(
        select(AcceptanceRecord)
        .where(col(AcceptanceRecord.requested_at) <= as_of)
        .where(or_(col(AcceptanceRecord.ended_at).is_(None), col(AcceptanceRecord.ended_at) >= start))
        .order_by(col(AcceptanceRecord.id))
    ).all()
    return [
        {
            "reference": summary.reference,
            "risks": summary.risks,
            "status": str(_status_as_of(record, as_of)),
            "requested_by": summary.requested_by,
            "requested_at": summary.requested_at.isoformat(),
            "approvers": summary.approved_by,
            "recorded": summary.recorded,
            "justification": summary.justification,
            "conditions": summary.conditions,
            "approved_at": _when(record.approved_at, as_of),
            "expires_at": summary.expires_at.isoformat(),
            "ended_at": _when(record.ended_at, as_of),
            "needs_reapproval": summary.needs_reapproval,
        }  # fmt: skip
        for record, summary in zip(records, queries.summaries(session, records, as_of=as_of), strict=True)
    ]


def _status_as_of(record: AcceptanceRecord, as_of: datetime) -> AcceptanceStatus:
    if record.ended_at is not None and record.ended_at <= as_of:
        return record.status
    if record.approved_at is not None and record.approved_at <= as_of:
        return AcceptanceStatus.approved
    return AcceptanceStatus.requested


def _when(moment: datetime | None, as_of: datetime) -> str | None:
    return moment.isoformat() if moment is not None and moment <= as_of else None


def _risks_by(session: Session, owner: Any, risk: Any, ids: set[int]) -> dict[int, list[str]]:
    """The references of the risks a link table ties to each of `ids` (an `owner` column), in risk order."""
    linked: dict[int, list[str]] = defaultdict(list)
    for owner_id, risk_id in session.exec(select(owner, risk).where(col(owner).in_(ids)).order_by(col(risk))):
        linked[owner_id].append(reference(risk_id))
    return linked


def control_tests(session: Session, start: datetime, as_of: datetime) -> list[dict[str, Any]]:
    """The control tests recorded in the period, each with the risks its control is applied to now."""
    rows = session.exec(
        select(ControlTest, Control)
        .join(Control, col(Control.id) == col(ControlTest.control_id))
        .where(col(ControlTest.recorded_at) > start, col(ControlTest.recorded_at) <= as_of)
        .order_by(col(ControlTest.id))
    ).all()
    applied = _risks_by(session, RiskControl.control_id, RiskControl.risk_id, {control.id for _, control in rows})
    return [
        {
            "control": control_reference(control.id),
            "title": control.title,
            "tested_on": test.tested_on.isoformat(),
            "tester": test.tester,
            "result": str(test.result),
            "evidence_url": test.evidence_url,
            "risks": applied[control.id],
        }  # fmt: skip
        for test, control in rows
    ]


def found_ineffective(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [test for test in tests if test["result"] == ControlTestResult.ineffective]


def processes(session: Session) -> list[dict[str, Any]]:
    """Every active business process: its objectives, whether a playbook in service meets them, and the open risks
    that threaten it (linked to it, to what it depends on, or to an asset those are part of)."""
    rows = session.exec(
        select(BusinessProcess).where(BusinessProcess.status == Standing.active).order_by(col(BusinessProcess.id))
    ).all()
    out = []
    for process in rows:
        met = recovery.recovery(session, process)
        threats = graph.threats_to_process(session, process)
        out.append({
            "reference": process.reference, "key": process.key, "name": process.name, "owner": process.owner,
            "criticality": str(process.criticality), "rto_minutes": process.rto_minutes,
            "rpo_minutes": process.rpo_minutes, "mtpd_minutes": process.mtpd_minutes,
            "rto_met": met.rto_met, "rpo_met": met.rpo_met, "mtpd_met": met.mtpd_met,
            "playbooks": [plan.id for plan in met.playbooks], "risks": [threat.reference for threat in threats.risks],
        })  # fmt: skip
    return out


def treatment_plans(session: Session, as_of: datetime) -> list[dict[str, Any]]:
    """Each open risk's treatment plan in figures, as it stands when the snapshot is taken: actions open (and of
    them overdue on the snapshot's day), done, and the next one due."""
    on = as_of.date()
    plans: dict[int, dict[str, Any]] = {}
    for risk_id, status, due in session.exec(
        select(col(TreatmentAction.risk_id), col(TreatmentAction.status), col(TreatmentAction.due_date))
        .join(Risk, col(Risk.id) == col(TreatmentAction.risk_id))
        .where(Risk.status == RiskStatus.open, TreatmentAction.status != ActionStatus.cancelled)
        .order_by(col(TreatmentAction.risk_id), col(TreatmentAction.due_date))
    ):
        plan = plans.setdefault(risk_id, {"risk": reference(risk_id), "open": 0, "overdue": 0, "done": 0,
                                          "next_due_date": None})  # fmt: skip
        if status == ActionStatus.done:
            plan["done"] += 1
            continue
        plan["open"] += 1
        plan["overdue"] += treatments.is_overdue(status, due, RiskStatus.open, on)
        plan["next_due_date"] = plan["next_due_date"] or due.isoformat()
    return list(plans.values())


def quantified_loss(session: Session, as_of: datetime) -> dict[str, Any] | None:
    """The open register's simulated yearly loss and each quantified risk's figures, from the estimates as they
    stand when the snapshot is taken; the seed is the snapshot's moment, so the same snapshot computes the same."""
    return quant.register_figures(session, seed=int(as_of.timestamp() * 1_000_000) % quant.MAX_SEED)


def kris(session: Session, as_of: datetime) -> list[dict[str, Any]]:
    """Every KRI defined by `as_of`, with its thresholds, status and newest value as they stood then (from its
    append-only threshold versions, transitions and values) and the risks it informs now."""
    out = []
    for kri in session.exec(select(Kri).where(col(Kri.created_at) <= as_of).order_by(col(Kri.id))):
        threshold = session.exec(
            select(KriThreshold)
            .where(KriThreshold.kri_id == kri.id, col(KriThreshold.set_at) <= as_of)
            .order_by(col(KriThreshold.version).desc())
        ).first()
        turned = session.exec(
            select(KriTransition)
            .where(KriTransition.kri_id == kri.id, col(KriTransition.recorded_at) <= as_of)
            .order_by(col(KriTransition.id).desc())
        ).first()
        newest = session.exec(
            select(KriValue.at, KriValue.value)
            .where(KriValue.kri_id == kri.id, col(KriValue.recorded_at) <= as_of, col(KriValue.at) <= as_of)
            .order_by(col(KriValue.at).desc())
        ).first()
        out.append({
            "reference": kri.reference, "name": kri.name, "unit": kri.unit, "owner": kri.owner,
            "direction": str(kri.direction),
            "amber": threshold.amber if threshold else kri.amber, "red": threshold.red if threshold else kri.red,
            "status": turned.to_status if turned else None,
            "last_value": newest[1] if newest else None, "last_value_at": newest[0].isoformat() if newest else None,
            "retired": kri.retired_at is not None and kri.retired_at <= as_of,
            "risks": [reference(i) for i in session.exec(
                select(KriRisk.risk_id).where(KriRisk.kri_id == kri.id).order_by(col(KriRisk.risk_id)))],
        })  # fmt: skip
    return out


def kri_transitions(session: Session, start: datetime, as_of: datetime) -> list[dict[str, Any]]:
    """The KRIs' changes of status recorded in the period, each with the risks its KRI informs now."""
    rows = session.exec(
        select(KriTransition, Kri)
        .join(Kri, col(Kri.id) == col(KriTransition.kri_id))
        .where(col(KriTransition.recorded_at) > start, col(KriTransition.recorded_at) <= as_of)
        .order_by(col(KriTransition.id))
    ).all()
    linked = _risks_by(session, KriRisk.kri_id, KriRisk.risk_id, {kri.id for _, kri in rows})
    return [
        {
            "kri": kri.reference,
            "name": kri.name,
            "from": turned.from_status,
            "to": turned.to_status,
            "value": turned.value,
            "at": turned.at.isoformat(),
            "recorded_at": turned.recorded_at.isoformat(),
            "risks": linked[kri.id],
        }  # fmt: skip
        for turned, kri in rows
    ]


def kri_status_by_risk(kris: list[dict[str, Any]]) -> dict[str, str]:
    """Each risk's worst KRI status (red > amber > green) among the snapshot's KRIs, by risk reference."""
    rank = {"red": 3, "amber": 2, "green": 1}
    worst: dict[str, str] = {}
    for kri in kris:
        status = kri["status"]
        if kri.get("retired") or status not in rank:
            continue  # a retired KRI, or one without a value, has no say
        for ref in kri["risks"]:
            if rank[status] > rank.get(worst.get(ref, ""), 0):
                worst[ref] = status
    return worst
