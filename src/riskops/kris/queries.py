"""Reading KRIs: each with its threshold versions and what it informs, their value history (raw and rolled-up days
together), and the KRIs of a risk."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, time

from sqlmodel import Session, col, select

from riskops.continuity.models import BusinessProcess
from riskops.kris.models import (
    Kri,
    KriDaily,
    KriProcess,
    KriPublic,
    KriRisk,
    KriStatus,
    KriThreshold,
    KriValue,
    LinkedRef,
    ThresholdVersion,
    ValuePoint,
)
from riskops.kris.service import get_kri, parse_kri_ref
from riskops.pagination import Page, decode_id_cursor, id_page
from riskops.risks.models import Risk

MAX_POINTS = 20_000  # a history answer's points, newest kept: beyond that, ask for a shorter span


def present_all(session: Session, kris: Sequence[Kri]) -> list[KriPublic]:
    """The KRIs with their thresholds' history and links, in three statements."""
    ids = [kri.id for kri in kris]
    thresholds: dict[int, list[ThresholdVersion]] = defaultdict(list)
    for row in session.exec(
        select(KriThreshold).where(col(KriThreshold.kri_id).in_(ids)).order_by(col(KriThreshold.version))
    ):
        thresholds[row.kri_id].append(ThresholdVersion.model_validate(row, from_attributes=True))
    risks: dict[int, list[LinkedRef]] = defaultdict(list)
    for kri_id, risk_id, title in session.exec(
        select(KriRisk.kri_id, Risk.id, Risk.title)
        .join(Risk, col(Risk.id) == col(KriRisk.risk_id))
        .where(col(KriRisk.kri_id).in_(ids))
        .order_by(col(Risk.id))
    ):
        risks[kri_id].append(LinkedRef(id=risk_id, reference=f"R-{risk_id:04d}", title=title))
    processes: dict[int, list[LinkedRef]] = defaultdict(list)
    for kri_id, process in session.exec(
        select(KriProcess.kri_id, BusinessProcess)
        .join(BusinessProcess, col(BusinessProcess.id) == col(KriProcess.process_id))
        .where(col(KriProcess.kri_id).in_(ids))
        .order_by(col(BusinessProcess.id))
    ):
        processes[kri_id].append(LinkedRef(id=process.id, reference=process.reference, title=process.name))
    return [present(kri, thresholds[kri.id], risks[kri.id], processes[kri.id]) for kri in kris]


def present(
    kri: Kri, thresholds: list[ThresholdVersion], risks: list[LinkedRef], processes: list[LinkedRef]
) -> KriPublic:
    return KriPublic(
        id=kri.id, reference=kri.reference, name=kri.name, description=kri.description, unit=kri.unit,
        direction=kri.direction, amber=kri.amber, red=kri.red, threshold_version=kri.threshold_version,
        thresholds=thresholds, frequency_minutes=kri.frequency_minutes, owner=kri.owner,
        escalation_policy=kri.escalation_policy, source=kri.source, query=kri.query, status=kri.status,
        status_since=kri.status_since, last_value=kri.last_value, last_value_at=kri.last_value_at,
        last_pull_at=kri.last_pull_at, last_pull_error=kri.last_pull_error, retired_at=kri.retired_at, risks=risks,
        processes=processes, version=kri.version, created_at=kri.created_at, updated_at=kri.updated_at,
    )  # fmt: skip


def read_kri(session: Session, ref: str) -> KriPublic:
    return present_all(session, [get_kri(session, parse_kri_ref(ref))])[0]


def list_kris(
    session: Session, *, status: Sequence[KriStatus], retired: bool | None = None, cursor: str | None, limit: int
) -> Page[KriPublic]:
    """In reference order; `status` keeps those in any of the statuses given, `retired` those retired or not."""
    statement = select(Kri).where(col(Kri.id) > (decode_id_cursor(cursor) or 0))
    if retired is not None:
        statement = statement.where(col(Kri.retired_at).is_not(None) if retired else col(Kri.retired_at).is_(None))
    if status:
        statement = statement.where(col(Kri.status).in_(status))
    rows, next_cursor = id_page(list(session.exec(statement.order_by(col(Kri.id)).limit(limit + 1))), limit)
    return Page(items=present_all(session, rows), next_cursor=next_cursor)


def risk_kris(session: Session, risk_id: int) -> list[KriPublic]:
    """The KRIs linked to a risk, worst status first, then by reference."""
    return present_all(session, linked_to(session, risk_id))


def linked_to(session: Session, risk_id: int) -> list[Kri]:
    """The KRI rows linked to a risk, worst status first, then by reference."""
    rows = list(
        session.exec(select(Kri).join(KriRisk, col(KriRisk.kri_id) == col(Kri.id)).where(KriRisk.risk_id == risk_id))
    )
    order = {KriStatus.red: 0, KriStatus.amber: 1, KriStatus.green: 2}
    rows.sort(key=lambda k: (order.get(KriStatus(k.status), 3) if k.status else 3, k.id))
    return rows


def history(session: Session, kri: Kri, since: datetime | None, until: datetime | None) -> list[ValuePoint]:
    """Values in time order: the rolled-up days (each at its last value's time) then the raw values after them."""
    daily = select(KriDaily).where(KriDaily.kri_id == kri.id)
    raw = select(KriValue).where(KriValue.kri_id == kri.id)
    if since is not None:
        daily = daily.where(col(KriDaily.day) >= since.astimezone(UTC).date())
        raw = raw.where(col(KriValue.at) >= since)
    if until is not None:
        daily = daily.where(col(KriDaily.day) <= until.astimezone(UTC).date())
        raw = raw.where(col(KriValue.at) <= until)
    points = [
        ValuePoint(
            at=datetime.combine(d.day, time.min, UTC) if d.last_at is None else d.last_at,
            value=d.last,
            resolution="day",
            min=d.min,
            max=d.max,
            mean=d.mean,
            count=d.count,
        )  # fmt: skip
        for d in session.exec(daily.order_by(col(KriDaily.day).desc()).limit(MAX_POINTS))
    ]
    points += [
        ValuePoint(at=v.at, value=v.value, resolution="raw")
        for v in session.exec(raw.order_by(col(KriValue.at).desc()).limit(MAX_POINTS))
    ]
    points.sort(key=lambda p: p.at)
    return points[-MAX_POINTS:]
