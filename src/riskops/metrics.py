"""Prometheus metrics of one process: its requests and scheduler ticks, counted in memory, and what the database
holds (notices, deliveries, alerts, incidents, risks), read at scrape time with a few aggregate queries: the
database is the truth, and every instance that shares it reports the same figures."""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, GCCollector, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from sqlalchemy import Connection, Engine, case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from riskops.clock import now as utcnow
from riskops.crisis import Severity
from riskops.events.models import Delivery, DeliveryStatus, SubscriptionStatus, WebhookSubscription
from riskops.incidents.models import OPEN, Incident
from riskops.integrations.models import Integration, ReceivedAlert
from riskops.notices.models import Notice
from riskops.risks.models import Risk, RiskStatus
from riskops.risks.scoring import overdue_clause
from riskops.worker import Worker

log = logging.getLogger(__name__)

# From a fast read (a few ms) to the slowest documented request (an import of 50,000 rows takes seconds).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Any other method a client invents is counted as OTHER: label values must stay few.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "OTHER"


class Metrics:
    """One app's registry (not prometheus_client's global one: a test process builds many apps)."""

    def __init__(self, engine: Engine):
        self.registry = CollectorRegistry()
        for standard in (ProcessCollector, PlatformCollector, GCCollector):
            standard(registry=self.registry)
        self._requests = Histogram(
            "riskops_http_request_duration_seconds",
            "Requests this process answered, by method, route template and status; _count counts them.",
            ["method", "route", "status"], buckets=REQUEST_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._children: dict[tuple[str, str, int], Histogram] = {}
        self.registry.register(DatabaseCollector(engine))
        self.scheduler = SchedulerCollector()
        self.registry.register(self.scheduler)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """The request guard's observer: one histogram observation, its labelled child looked up once."""
        key = (method if method in _METHODS else OTHER, route, status)
        child = self._children.get(key)
        if child is None:  # a race here only looks the same child up twice
            child = self._children[key] = self._requests.labels(key[0], route, str(status))
        child.observe(seconds)

    def exposition(self) -> bytes:
        """The text format; blocking (the database's figures are queried): call it in a worker thread."""
        return generate_latest(self.registry)


class SchedulerCollector:
    """The ticks of the scheduler running in this process, if one does (`serve` with the scheduler enabled)."""

    def __init__(self) -> None:
        self.worker: Worker | None = None

    def collect(self) -> Iterable[Metric]:
        worker = self.worker
        if worker is None:
            return
        yield from worker.tick_seconds.collect()
        if worker.last_tick_at is not None:
            yield GaugeMetricFamily(
                "riskops_scheduler_last_tick_timestamp_seconds",
                "When this process's scheduler last finished a tick (Unix time).",
                value=worker.last_tick_at.timestamp(),
            )


class DatabaseCollector:
    """Figures kept in the database, read when scraped. If it cannot be read, riskops_database_up is 0 and the
    rest of the scrape (this process's own metrics) still answers."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        families: list[Metric] = []
        try:
            with self.engine.connect() as conn:
                families = list(_database_families(conn, utcnow()))
        except SQLAlchemyError as exc:
            log.warning("metrics: the database could not be read: %s", str(exc).partition("\n")[0])
        yield _gauge("riskops_database_up", "Whether this scrape could read the database.", 1 if families else 0)
        yield from families


@dataclass(frozen=True)
class Backlog:
    """Deliveries waiting to be sent: pending, due, to active subscriptions."""

    due: int
    oldest_due_at: datetime | None

    def oldest_due_seconds(self, now: datetime) -> float:
        return 0.0 if self.oldest_due_at is None else max((now - self.oldest_due_at).total_seconds(), 0.0)


def delivery_backlog(conn: Connection, now: datetime) -> Backlog:
    """The deliveries the worker would claim now (leases aside), from the index on (status, next_attempt_at)."""
    due, oldest = conn.execute(
        select(func.count(), func.min(col(Delivery.next_attempt_at)))
        .join(WebhookSubscription, col(WebhookSubscription.id) == col(Delivery.subscription_id))
        .where(
            col(Delivery.status) == DeliveryStatus.pending,
            col(Delivery.next_attempt_at) <= now,
            col(WebhookSubscription.status) == SubscriptionStatus.active,
        )
    ).one()
    return Backlog(due, oldest)


def _database_families(conn: Connection, now: datetime) -> Iterator[Metric]:
    yield from _notices(conn, now)
    yield from _webhooks(conn, now)
    yield from _inbound(conn)
    yield from _incidents(conn)
    yield from _risks(conn, now)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _notices(conn: Connection, now: datetime) -> Iterator[Metric]:
    pending, overdue, oldest = conn.execute(
        select(func.count(), func.count(case((col(Notice.due_at) <= now, 1))), func.min(col(Notice.due_at))).where(
            col(Notice.fired_at).is_(None)
        )
    ).one()
    yield _gauge("riskops_notices_pending", "Notices not fired yet (reminders, escalations, deadlines).", pending)
    yield _gauge("riskops_notices_overdue", "Pending notices already due: the schedulers' unfinished work.", overdue)
    lag = max((now - oldest).total_seconds(), 0.0) if overdue else 0.0
    yield _gauge("riskops_scheduler_lag_seconds", "How long the oldest due notice has waited for a tick.", lag)


def _webhooks(conn: Connection, now: datetime) -> Iterator[Metric]:
    subscriptions = conn.execute(select(col(WebhookSubscription.id), col(WebhookSubscription.status))).all()
    by_status = GaugeMetricFamily("riskops_webhook_subscriptions", "Subscriptions by status.", labels=["status"])
    for status in SubscriptionStatus:
        by_status.add_metric([status.value], sum(1 for _, s in subscriptions if s == status))
    yield by_status
    counted = conn.execute(
        select(col(Delivery.subscription_id), col(Delivery.status), func.count())
        .where(col(Delivery.status).in_([DeliveryStatus.pending, DeliveryStatus.failed]))
        .group_by(col(Delivery.subscription_id), col(Delivery.status))
    ).all()
    counts = {(subscription, status): n for subscription, status, n in counted}
    deliveries = GaugeMetricFamily(
        "riskops_webhook_deliveries",
        "Deliveries not yet sent (pending) or given up (failed), per subscription.",
        labels=["subscription", "status"],
    )
    for subscription, _ in subscriptions:
        for state in (DeliveryStatus.pending, DeliveryStatus.failed):
            deliveries.add_metric([str(subscription), state.value], counts.get((subscription, state), 0))
    yield deliveries
    backlog = delivery_backlog(conn, now)
    yield _gauge("riskops_webhook_deliveries_due", "Pending deliveries due now to active subscriptions.", backlog.due)
    yield _gauge(
        "riskops_webhook_delivery_oldest_due_seconds", "How long the oldest due delivery has waited.",
        backlog.oldest_due_seconds(now),
    )  # fmt: skip


def _inbound(conn: Connection) -> Iterator[Metric]:
    counted = conn.execute(
        select(col(ReceivedAlert.integration_id), col(Integration.kind), col(ReceivedAlert.outcome), func.count())
        .join(Integration, col(Integration.id) == col(ReceivedAlert.integration_id))
        .group_by(col(ReceivedAlert.integration_id), col(Integration.kind), col(ReceivedAlert.outcome))
    ).all()
    alerts = CounterMetricFamily(
        "riskops_inbound_alerts",
        "Alert bodies received, by integration and outcome (opened, attached, resolved, ignored, rejected...).",
        labels=["integration", "kind", "outcome"],
    )
    for integration, kind, outcome, n in counted:
        alerts.add_metric([str(integration), str(kind), outcome], n)
    yield alerts


def _incidents(conn: Connection) -> Iterator[Metric]:
    counted = conn.execute(
        select(col(Incident.severity), col(Incident.state), func.count())
        .where(col(Incident.is_exercise).is_(False), col(Incident.state).in_(OPEN))
        .group_by(col(Incident.severity), col(Incident.state))
    ).all()
    counts = {(severity, state): n for severity, state, n in counted}
    incidents = GaugeMetricFamily(
        "riskops_incidents_open", "Open incidents (not exercises) by severity and state.", labels=["severity", "state"]
    )
    for severity in Severity:
        for state in sorted(OPEN):
            incidents.add_metric([severity.value, state.value], counts.get((severity, state), 0))
    yield incidents


def _risks(conn: Connection, now: datetime) -> Iterator[Metric]:
    # One pass over the open risks (no index holds both level and review date): at 1,000,000 risks about 0.3 s on
    # PostgreSQL, 1.5 s on SQLite; two statements, each with an index, took longer.
    counted = conn.execute(
        select(col(Risk.level), func.count(), func.count(case((overdue_clause(now), 1))))
        .where(col(Risk.status) == RiskStatus.open)
        .group_by(col(Risk.level))
    ).all()
    open_risks = GaugeMetricFamily("riskops_risks_open", "Open risks by level.", labels=["level"])
    late = GaugeMetricFamily("riskops_risks_overdue", "Open risks past their review date, by level.", labels=["level"])
    for level, n, overdue in counted:
        open_risks.add_metric([level], n)
        late.add_metric([level], overdue)
    yield open_risks
    yield late
