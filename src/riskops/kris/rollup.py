"""Keeping KRI history small: raw values older than RISKOPS_KRI_RAW_DAYS (whole UTC days) become one row per KRI
and day (min, max, mean, last, count) and the raw rows go, in one transaction, claimed once an hour."""

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session, col, delete, select

from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import Database
from riskops.kris.models import KriDaily, KriValue
from riskops.notices import service as notices

JOB = "kri.roll_up"


def roll_up(database: Database, settings: Settings) -> bool:
    with database.write() as session:
        now = utcnow()
        if not notices.claim_period(session, JOB, now.strftime("%Y-%m-%dT%H")):
            return False
        roll_before(session, cutoff(now, settings))
    return True


def cutoff(now: datetime, settings: Settings) -> datetime:
    """Values before the start of this UTC day, RISKOPS_KRI_RAW_DAYS ago, are rolled up."""
    return datetime.combine((now - timedelta(days=settings.kri_raw_days)).date(), time.min, UTC)


def roll_before(session: Session, before: datetime) -> int:
    """Roll every raw value before `before` into its day (merged with a day rolled before); how many went."""
    rows = session.exec(
        select(KriValue.kri_id, KriValue.at, KriValue.value)
        .where(col(KriValue.at) < before)
        .order_by(col(KriValue.kri_id), col(KriValue.at))
    ).all()
    days: dict[tuple[int, date], list[tuple[datetime, float]]] = {}
    for kri_id, at, value in rows:
        days.setdefault((kri_id, at.date()), []).append((at, value))
    for (kri_id, day), points in days.items():
        _merge(session, kri_id, day, points)
    session.exec(delete(KriValue).where(col(KriValue.at) < before))
    session.flush()
    return len(rows)


def _merge(session: Session, kri_id: int, day: date, points: Iterable[tuple[datetime, float]]) -> None:
    ordered = sorted(points)
    numbers = [v for _, v in ordered]
    row = session.get(KriDaily, (kri_id, day))
    if row is None:
        row = KriDaily(
            kri_id=kri_id, day=day, min=min(numbers), max=max(numbers), mean=sum(numbers) / len(numbers),
            last=ordered[-1][1], last_at=ordered[-1][0], count=len(numbers),
        )  # fmt: skip
    else:  # a value filed late for a day already rolled up
        total = row.mean * row.count + sum(numbers)
        row.min, row.max = min(row.min, *numbers), max(row.max, *numbers)
        row.count += len(numbers)
        row.mean = total / row.count
        if ordered[-1][0] >= row.last_at:
            row.last, row.last_at = ordered[-1][1], ordered[-1][0]
    session.add(row)
