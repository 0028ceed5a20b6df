"""Pulling KRIs from Prometheus: the due ones claimed once across any number of workers (their next pull moved on in
the claiming transaction), each queried with `GET /api/v1/query` outside any transaction, and its value recorded as
a pushed one would be. A failed pull is written on the KRI (last_pull_error) and tried again next period."""

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import col, select

from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import Database
from riskops.errors import DomainError
from riskops.kris import values
from riskops.kris.models import Kri, Source

BATCH = 100  # KRIs claimed by one run; more wait for the next tick
MAX_ANSWER = 1024 * 1024  # bytes of a query's answer: one sample is a few hundred


class PullError(Exception):
    """Why a pull gave no value, as the KRI shows it."""


def pull_due(database: Database, settings: Settings) -> bool:
    """Claim the due prometheus KRIs, query each, record what came back; whether any was pulled."""
    now = utcnow()
    with database.write() as session:
        query = (
            select(Kri)
            .where(Kri.source == Source.prometheus, col(Kri.next_pull_at) <= now)
            .order_by(col(Kri.next_pull_at), col(Kri.id))
            .limit(BATCH)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = list(session.exec(query))
        for kri in claimed:
            kri.next_pull_at = now + timedelta(minutes=kri.frequency_minutes)
            if settings.prometheus_url is None:
                kri.last_pull_at, kri.last_pull_error = now, "RISKOPS_PROMETHEUS_URL is not set"
            session.add(kri)
        work = [(kri.id, kri.query or "") for kri in claimed]
    if not work or settings.prometheus_url is None:
        return False
    with httpx.Client(timeout=settings.prometheus_timeout_seconds) as client:
        for kri_id, promql in work:
            try:
                answer: tuple[datetime, float] | str = sample(client, settings.prometheus_url, promql)
            except PullError as exc:
                answer = str(exc)
            _store(database, settings, kri_id, answer)
    return True


def _store(database: Database, settings: Settings, kri_id: int, answer: tuple[datetime, float] | str) -> None:
    with database.write() as session:
        kri = session.get(Kri, kri_id, with_for_update={"key_share": True})
        if kri is None or kri.source != Source.prometheus or kri.retired_at is not None:
            return  # turned to push, or retired, meanwhile
        kri.last_pull_at, kri.last_pull_error = utcnow(), answer if isinstance(answer, str) else None
        session.add(kri)
        if isinstance(answer, str):
            return
        try:
            with session.begin_nested():
                values.record(session, kri, [values.Measurement(*answer)], "prometheus", values.SCHEDULER, settings)
        except DomainError as exc:
            kri.last_pull_error = exc.detail
            session.add(kri)


def sample(client: httpx.Client, base_url: str, promql: str) -> tuple[datetime, float]:
    """The one value an instant query gives (a scalar, or a vector of one sample) with its timestamp."""
    try:
        response = client.get(f"{base_url.rstrip('/')}/api/v1/query", params={"query": promql})
    except httpx.HTTPError as exc:
        raise PullError(f"Prometheus could not be reached: {exc}") from None
    if len(response.content) > MAX_ANSWER:
        raise PullError(f"Prometheus answered with more than {MAX_ANSWER} bytes")
    try:
        body: Any = response.json()
    except ValueError:
        raise PullError(f"Prometheus answered {response.status_code} without JSON") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise PullError(f"Prometheus answered {response.status_code}: {error or 'not a success'}"[:1000])
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    point: Any
    if kind == "scalar":
        point = result
    elif kind == "vector" and isinstance(result, list):
        if len(result) != 1:
            raise PullError(f"the query gave {len(result)} series; a KRI needs exactly one (aggregate it)")
        point = result[0].get("value") if isinstance(result[0], dict) else None
    else:
        raise PullError(f"the query gave a {kind}; a KRI needs a scalar or a vector of one sample")
    try:
        at, value = datetime.fromtimestamp(float(point[0]), UTC), float(point[1])
    except (TypeError, ValueError, IndexError, OverflowError):
        raise PullError("the query's sample is not a timestamp and a number") from None
    if not math.isfinite(value):
        raise PullError(f"the query gave {point[1]}; a KRI needs a finite number")
    return at, value
