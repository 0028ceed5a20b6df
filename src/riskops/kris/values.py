"""Recording a KRI's values, however they come (pushed, uploaded, pulled from Prometheus), and what the newest one
means: its status, and on a change of it the event, the linked risks' reassessment and the escalation. Callers
commit; the KRI must be locked by the caller (values of one KRI are recorded one transaction at a time)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import table_of
from riskops.errors import Conflict, Unprocessable, field_error
from riskops.events import service as events
from riskops.kris import alerts
from riskops.kris.models import SEVERITY, Kri, KriRisk, KriStatus, KriTransition, KriValue, status_of
from riskops.risks import service as risks
from riskops.risks.models import Risk, RiskStatus

# Who acts when a pulled value or a timed notice changes something: no person.
SCHEDULER = Principal(key_id=0, name="scheduler", role=Role.admin, automatic=True)
EARLIEST, AHEAD = datetime(1970, 1, 1, tzinfo=UTC), timedelta(days=1)
EVENT_FOR = {KriStatus.amber: "kri.amber", KriStatus.red: "kri.red", KriStatus.green: "kri.recovered"}


@dataclass(frozen=True)
class Measurement:
    at: datetime
    value: float


@dataclass(frozen=True)
class Recorded:
    recorded: int
    unchanged: int


def record(
    session: Session, kri: Kri, measurements: Sequence[Measurement], source: str, who: Principal, settings: Settings,
    *, loc: tuple[str | int, ...] = ("body", "values"), rows: Sequence[int] | None = None,
) -> Recorded:  # fmt: skip
    """Idempotent per moment: a value already recorded at the same moment is a no-op when equal, and refused (409,
    naming the item at `loc`, by its index or its number in `rows`) when not; nothing is written then. Only a value
    newer than the newest moves the status: one filed late is history. A retired KRI takes none (409)."""
    if kri.retired_at is not None:
        raise Conflict(
            f"KRI {kri.reference} is retired; put it back to work (PATCH retired=false) before recording values."
        )
    first: dict[datetime, tuple[int, float]] = {}
    latest = utcnow() + AHEAD
    for n, m in enumerate(measurements):
        i = rows[n] if rows is not None else n
        at = _moment(m.at, latest, (*loc, i, "at"))
        if at in first and first[at][1] != m.value:
            _refuse(kri, (*loc, i), at, first[at][1], m.value)
        first.setdefault(at, (i, m.value))
    existing = dict(
        session.exec(
            select(KriValue.at, KriValue.value).where(KriValue.kri_id == kri.id, col(KriValue.at).in_(list(first)))
        ).all()
    )
    for at, (i, value) in first.items():
        if at in existing and existing[at] != value:
            _refuse(kri, (*loc, i), at, existing[at], value)
    new = [(at, value) for at, (_, value) in first.items() if at not in existing]
    if new:
        now = utcnow()
        session.execute(
            insert(table_of(KriValue)),
            [{"kri_id": kri.id, "at": at, "value": v, "source": source, "recorded_at": now} for at, v in new],
        )
        at, value = max(new)
        if kri.last_value_at is None or at > kri.last_value_at:
            _newest(session, kri, value, at, who, settings)
    return Recorded(recorded=len(new), unchanged=len(measurements) - len(new))


def _moment(at: datetime, latest: datetime, loc: tuple[str | int, ...]) -> datetime:
    """The moment in UTC, if a KRI can have a value then: from 1970 on, and not ahead of the clock by more than a
    day (a value from the future would hold the status until then)."""
    try:
        moment = at.astimezone(UTC)
    except OverflowError:
        moment = EARLIEST - AHEAD
    if not EARLIEST <= moment <= latest:
        raise Unprocessable(
            f"A value's time must lie between 1970 and a day from now; {at.isoformat()} does not.",
            errors=[field_error(loc, "before 1970 or more than a day ahead")],
        )
    return moment


def _refuse(kri: Kri, loc: tuple[str | int, ...], at: datetime, had: float, given: float) -> None:
    raise Conflict(
        f"{kri.reference} already has the value {had} at {at.isoformat()}; {given} cannot replace it.",
        errors=[field_error(loc, f"{at.isoformat()} already recorded as {had}")],
    )


def _newest(session: Session, kri: Kri, value: float, at: datetime, who: Principal, settings: Settings) -> None:
    kri.last_value, kri.last_value_at = value, at
    session.add(kri)
    restatus(session, kri, who, settings)
    alerts.plan_stale(session, kri)


def restatus(session: Session, kri: Kri, who: Principal, settings: Settings) -> None:
    """The status the newest value gives under the current thresholds; a change of it is a transition."""
    if kri.last_value is None or kri.last_value_at is None:
        return
    new = status_of(kri.last_value, kri.direction, kri.amber, kri.red)
    old = KriStatus(kri.status) if kri.status else None
    if new == old:
        return
    kri.status, kri.status_since = new, utcnow()
    session.add(kri)
    session.add(
        KriTransition(
            kri_id=kri.id, from_status=old, to_status=new, value=kri.last_value, at=kri.last_value_at,
            recorded_at=kri.status_since,
        )
    )  # fmt: skip
    session.flush()
    if old == KriStatus.red:
        alerts.cancel_escalation(session, kri)
    if new == KriStatus.red:
        alerts.plan_escalation(session, kri)
    linked = list(session.exec(select(KriRisk.risk_id).where(KriRisk.kri_id == kri.id).order_by(col(KriRisk.risk_id))))
    if old is not None or new != KriStatus.green:  # a first value in the green is no news
        exposed = _reassess(session, kri, old, new, linked, who, settings)
        data = {**alerts.event_data(kri), "from": str(old) if old else None, "to": str(new), "risks": exposed}
        events.emit(session, EVENT_FOR[new], "kri", kri.reference, data)
    refresh_risks(session, linked)


def _reassess(
    session: Session, kri: Kri, old: KriStatus | None, new: KriStatus, linked: list[int], who: Principal,
    settings: Settings,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every open linked risk is due for review now, the change in its history; those risks, as the event names."""
    locked = [risks.get_risk(session, risk_id, for_update=True) for risk_id in linked]  # in id order: no deadlock
    exposed = [risk for risk in locked if risk.status == RiskStatus.open]
    moved = "recovered to green" if new == KriStatus.green else f"turned {new}"
    reason = (
        f"KRI {kri.reference} ({kri.name}) {moved}: {kri.last_value:g} {kri.unit}".rstrip()
        + f" at {kri.last_value_at:%Y-%m-%d %H:%M} UTC (amber {kri.amber:g}, red {kri.red:g})."
    )
    extra = {"kri": {"id": kri.id, "reference": kri.reference, "name": kri.name}, "kri_from": old, "kri_to": new}
    risks.request_reassessment(session, exposed, reason, who, settings, extra=extra)
    return [{"id": r.id, "reference": r.reference, "title": r.title, "owner": r.owner} for r in exposed]


def refresh_risks(session: Session, risk_ids: Sequence[int] | set[int]) -> None:
    """Each risk's kri_status: the worst status of the KRIs linked to it (null without one with a value)."""
    if not risk_ids:
        return
    worst: dict[int, KriStatus] = {}
    for risk_id, status in session.exec(
        select(KriRisk.risk_id, Kri.status)
        .join(Kri, col(Kri.id) == col(KriRisk.kri_id))
        .where(col(KriRisk.risk_id).in_(risk_ids), col(Kri.status).is_not(None), col(Kri.retired_at).is_(None))
    ):
        status = KriStatus(str(status))
        if risk_id not in worst or SEVERITY[status] > SEVERITY[worst[risk_id]]:
            worst[risk_id] = status
    for risk in session.exec(select(Risk).where(col(Risk.id).in_(risk_ids))):
        shown = str(worst[risk.id]) if risk.id in worst else None
        if risk.kri_status != shown:
            risk.kri_status = shown
            session.add(risk)
    session.flush()
