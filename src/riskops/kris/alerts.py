"""A KRI's deadlines, as notices: stale (no value within its frequency and a grace), and, while red, the levels of
its escalation policy."""

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from riskops.config import Settings
from riskops.events import service as events
from riskops.incidents.escalations import service as escalations
from riskops.kris.models import Kri, KriStatus
from riskops.mail import service as mail
from riskops.notices import service as scheduler
from riskops.notices.models import Notice
from riskops.notices.service import NoticeHandler

STALE, ESCALATION = "kri.stale", "kri.escalation"
ESCALATED = "kri.escalated"


def stale_after(kri: Kri) -> timedelta:
    """No value within the frequency and a grace (a tenth of it, a minute at least): the KRI is stale."""
    return timedelta(minutes=kri.frequency_minutes + max(1, kri.frequency_minutes // 10))


def _anchor(kri: Kri) -> datetime:
    return kri.last_value_at or kri.created_at


def plan_stale(session: Session, kri: Kri) -> None:
    """Keyed by the newest value's time: one stale notice per episode, re-planned by every newer value."""
    scheduler.cancel(session, "kri", kri.id, (STALE,))
    if kri.retired_at is not None:
        return  # a retired KRI is expected to say nothing
    anchor = _anchor(kri)
    scheduler.plan(session, [scheduler.notice(STALE, "kri", kri.id, anchor.isoformat(), anchor + stale_after(kri))])


def event_data(kri: Kri) -> dict[str, Any]:
    """What every event about a KRI says of it."""
    return {
        "id": kri.id, "reference": kri.reference, "name": kri.name, "owner": kri.owner, "unit": kri.unit,
        "direction": str(kri.direction), "amber": kri.amber, "red": kri.red,
        "status": str(kri.status) if kri.status else None, "last_value": kri.last_value,
        "last_value_at": kri.last_value_at.isoformat() if kri.last_value_at else None,
    }  # fmt: skip


def announce_stale(session: Session, notice: Notice, settings: Settings) -> None:
    kri = session.get(Kri, notice.subject_id)
    if kri is None or _anchor(kri).isoformat() != notice.ref:
        return  # a newer value came meanwhile
    events.emit(
        session, STALE, "kri", kri.reference, {**event_data(kri), "expected_every_minutes": kri.frequency_minutes}
    )
    if mail.looks_like_address(kri.owner):
        mail.queue(
            session, kri.owner, f"[riskops] {kri.reference} has no recent value",
            f"{kri.reference} {kri.name} expects a value every {kri.frequency_minutes} minutes; the newest is from "
            f"{notice.ref}.",
        )  # fmt: skip


def plan_escalation(session: Session, kri: Kri) -> None:
    """Turned red with a policy: one notice per level and round, the waits counted from turning red."""
    if kri.escalation_policy is None or kri.status != KriStatus.red or kri.status_since is None:
        return
    policy = escalations.get(session, kri.escalation_policy).parsed()
    episode = f"{kri.status_since.isoformat()}#"  # escalate() knows an earlier red spell's notices by it
    scheduler.plan(
        session, escalations.level_notices(ESCALATION, "kri", kri.id, kri.status_since, policy, episode=episode)
    )


def cancel_escalation(session: Session, kri: Kri) -> None:
    scheduler.cancel(session, "kri", kri.id, (ESCALATION,))


def escalate(session: Session, notice: Notice, settings: Settings) -> None:
    """Still red since the same moment at this level's time: notify the level's webhooks and addresses."""
    kri = session.get(Kri, notice.subject_id)
    if kri is None or kri.status != KriStatus.red or kri.status_since is None:
        return
    if not notice.ref.startswith(f"{kri.status_since.isoformat()}#"):
        return  # it left red, and turned red again since: that episode has notices of its own
    extra = {k: notice.data[k] for k in ("policy", "level", "round")}
    events.emit(session, ESCALATED, "kri", kri.reference, {**event_data(kri), **extra},
                targets=notice.data.get("webhooks", []))  # fmt: skip
    for address in notice.data.get("emails", []):
        mail.queue(
            session, address, f"[riskops] {kri.reference} is red: {kri.name}",
            f"{kri.reference} {kri.name} has been red since {kri.status_since:%Y-%m-%d %H:%M} UTC (level "
            f"{extra['level']} of policy {extra['policy']}); the newest value is {kri.last_value} {kri.unit}.",
        )  # fmt: skip


NOTICE_HANDLERS: dict[str, NoticeHandler] = {STALE: announce_stale, ESCALATION: escalate}
