"""Defining and editing KRIs: thresholds checked against the direction and versioned, the risks and processes they
inform, every change in the KRI's history. Callers commit. Values and status: riskops.kris.values."""

import re
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, delete, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.continuity import service as continuity
from riskops.db import get_row, storable
from riskops.errors import NotFound, PreconditionFailed, Unprocessable, field_error, stale
from riskops.incidents.escalations.models import EscalationPolicy
from riskops.kris import alerts, values
from riskops.kris.models import (
    Direction,
    Kri,
    KriCreate,
    KriProcess,
    KriRisk,
    KriThreshold,
    KriUpdate,
    Source,
    check_thresholds,
)
from riskops.risks import service as risks
from riskops.risks.models import Risk, reference

_REFERENCE = re.compile(r"^(?:K-)?0*(\d{1,12})$", re.IGNORECASE)
# Fields a client may set to null: the others always have a value.
_NULLABLE = {"escalation_policy", "query"}
_THRESHOLDS = {"direction", "amber", "red"}


def parse_kri_ref(ref: str) -> int:
    """Accept a numeric id or a reference such as K-0007."""
    match = _REFERENCE.match(ref.strip())
    if match is None:
        raise NotFound(f"'{ref}' is not a KRI id or reference (like 7 or K-0007).")
    return int(match.group(1))


def get_kri(session: Session, kri_id: int, *, for_update: bool = False) -> Kri:
    return get_row(session, Kri, kri_id, "KRI", with_for_update={"key_share": True} if for_update else None)


def get_for_change(session: Session, ref: str, if_match: str | None) -> Kri:
    """The KRI, locked for this transaction, provided it is still the version the caller read."""
    kri = get_kri(session, parse_kri_ref(ref), for_update=True)
    if stale(if_match, etag(kri)):
        raise PreconditionFailed(
            f"KRI {kri.reference} has changed since you read it (now version {kri.version}); read it again and "
            "reapply your change.",
            current_version=kri.version,
        )
    return kri


def etag(kri: Kri) -> str:
    return f'"{kri.version}"'


def state(kri: Kri, risk_ids: Sequence[int], process_ids: Sequence[int]) -> dict[str, Any]:
    """What the KRI's history records of it."""
    return {
        "name": kri.name, "description": kri.description, "unit": kri.unit, "direction": str(kri.direction),
        "amber": kri.amber, "red": kri.red, "threshold_version": kri.threshold_version,
        "frequency_minutes": kri.frequency_minutes, "owner": kri.owner, "escalation_policy": kri.escalation_policy,
        "source": str(kri.source), "query": kri.query, "risks": [reference(i) for i in sorted(risk_ids)],
        "processes": sorted(process_ids), "retired": kri.retired_at is not None,
    }  # fmt: skip


def linked_risk_ids(session: Session, kri_id: int) -> list[int]:
    return list(session.exec(select(KriRisk.risk_id).where(KriRisk.kri_id == kri_id).order_by(col(KriRisk.risk_id))))


def linked_process_ids(session: Session, kri_id: int) -> list[int]:
    return list(
        session.exec(
            select(KriProcess.process_id).where(KriProcess.kri_id == kri_id).order_by(col(KriProcess.process_id))
        )
    )


def create_kri(session: Session, data: KriCreate, who: Principal) -> Kri:
    fields = data.model_dump(exclude={"risks", "processes", "frequency"})
    kri = Kri(**fields, frequency_minutes=data.frequency)
    _check(session, kri)
    risk_ids = _risk_ids(session, data.risks)
    process_ids = _process_ids(session, data.processes)
    if kri.source == Source.prometheus:
        kri.next_pull_at = utcnow()
    session.add(kri)
    session.flush()
    _add_threshold(session, kri, who)
    _link(session, kri, risk_ids, process_ids)
    audit.service.record(
        session, entity_type="kri", entity_id=kri.id, action="created", actor=who.name,
        changes=audit.service.diff({}, state(kri, risk_ids, process_ids)),
    )  # fmt: skip
    alerts.plan_stale(session, kri)
    return kri


def edit_kri(session: Session, kri: Kri, data: KriUpdate, who: Principal, settings: Settings) -> Kri:
    risk_ids, process_ids = linked_risk_ids(session, kri.id), linked_process_ids(session, kri.id)
    before = state(kri, risk_ids, process_ids)
    for name in data.model_fields_set - {"risks", "processes"}:
        value = getattr(data, name)
        if value is None and name not in _NULLABLE:
            raise Unprocessable(f"{name} cannot be null.", errors=[field_error(("body", name), "cannot be null")])
        if name == "retired":
            if value != (kri.retired_at is not None):
                kri.retired_at = utcnow() if value else None
        else:
            setattr(kri, "frequency_minutes" if name == "frequency" else name, value)
    _check(session, kri)
    if data.risks is not None:
        risk_ids = _risk_ids(session, data.risks)
    if data.processes is not None:
        process_ids = _process_ids(session, data.processes)
    new_thresholds = any(before[name] != (str(v) if name == "direction" else v)
                         for name in _THRESHOLDS if (v := getattr(kri, name)) is not None)  # fmt: skip
    if new_thresholds:
        kri.threshold_version += 1
    changes = audit.service.diff(before, state(kri, risk_ids, process_ids))
    if not changes:
        return kri  # nothing changed: no new version, no history entry
    if kri.source == Source.prometheus and kri.retired_at is None and (kri.next_pull_at is None or "query" in changes):
        kri.next_pull_at = utcnow()
    kri.version += 1
    kri.updated_at = utcnow()
    session.add(kri)
    session.flush()
    if new_thresholds:
        _add_threshold(session, kri, who)
    old_risks = set(before["risks"])
    _link(session, kri, risk_ids, process_ids)
    action = ("retired" if kri.retired_at else "reactivated") if "retired" in changes else "updated"
    audit.service.record(session, entity_type="kri", entity_id=kri.id, action=action, actor=who.name,
                         changes=changes)  # fmt: skip
    if changes.keys() & {"frequency_minutes", "retired"}:
        alerts.plan_stale(session, kri)
    if kri.retired_at is not None:
        alerts.cancel_escalation(session, kri)
    elif (new_thresholds or "retired" in changes) and kri.last_value is not None:
        values.restatus(session, kri, who, settings)  # the newest value judged by the thresholds now in force
    values.refresh_risks(session, {*risk_ids, *(risks.parse_risk_ref(r) for r in old_risks)})
    return kri


def _check(session: Session, kri: Kri) -> None:
    """What the fields must say together: 422 naming the field."""
    problem = check_thresholds(Direction(kri.direction), kri.amber, kri.red)
    if problem:
        raise Unprocessable(f"The thresholds do not fit: {problem}.", errors=[field_error(("body", "red"), problem)])
    if kri.source == Source.prometheus and not kri.query:
        raise Unprocessable(
            "A prometheus KRI needs its PromQL query.", errors=[field_error(("body", "query"), "required")]
        )
    if kri.source == Source.push:
        kri.query, kri.next_pull_at = None, None
    if kri.retired_at is not None:
        kri.next_pull_at = None  # a retired KRI is not pulled
    if (
        kri.escalation_policy is not None
        and not session.exec(select(EscalationPolicy.id).where(EscalationPolicy.name == kri.escalation_policy)).first()
    ):
        raise Unprocessable(
            f"No escalation policy is named '{kri.escalation_policy}'.",
            errors=[field_error(("body", "escalation_policy"), "unknown policy")],
        )


def _risk_ids(session: Session, refs: Sequence[str]) -> list[int]:
    ids: list[int] = []
    for i, ref in enumerate(refs):
        try:
            number = risks.parse_risk_ref(ref)
        except NotFound:
            number = 0
        if not storable(number) or session.get(Risk, number) is None:
            raise Unprocessable(
                f"No risk is '{ref}'.", errors=[field_error(("body", "risks", i), "no such risk")]
            )  # fmt: skip
        ids.append(number)
    return sorted(set(ids))


def _process_ids(session: Session, refs: Sequence[str]) -> list[int]:
    found = continuity.find_all(session, "process", refs)
    for i, ref in enumerate(refs):
        if ref not in found:
            raise Unprocessable(
                f"No process is '{ref}'.", errors=[field_error(("body", "processes", i), "no such process")]
            )
    return sorted({row.id for row in found.values()})


def _add_threshold(session: Session, kri: Kri, who: Principal) -> None:
    session.add(
        KriThreshold(
            kri_id=kri.id, version=kri.threshold_version, direction=kri.direction, amber=kri.amber, red=kri.red,
            set_by=who.name, set_at=kri.updated_at,
        )
    )  # fmt: skip


def _link(session: Session, kri: Kri, risk_ids: Sequence[int], process_ids: Sequence[int]) -> None:
    session.exec(delete(KriRisk).where(col(KriRisk.kri_id) == kri.id))
    session.exec(delete(KriProcess).where(col(KriProcess.kri_id) == kri.id))
    session.add_all([KriRisk(kri_id=kri.id, risk_id=i) for i in risk_ids])
    session.add_all([KriProcess(kri_id=kri.id, process_id=i) for i in process_ids])
    session.flush()
    values.refresh_risks(session, risk_ids)
