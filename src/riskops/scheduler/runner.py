"""The clock-driven half: APScheduler ticks, and each tick does whatever the database says is due."""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import Database
from riskops.events import service as events
from riskops.incidents import scheduled as incident_deadlines
from riskops.mail import service as mail
from riskops.reviews import scheduled as review_deadlines
from riskops.reviews import service as reviews
from riskops.reviews.models import ReviewCycle
from riskops.risks import scheduled as risk_deadlines
from riskops.scheduler import service as notices
from riskops.scheduler.models import Notice, PeriodicRun
from riskops.webhooks import network
from riskops.webhooks import service as webhooks

log = logging.getLogger(__name__)

HANDLERS: dict[str, Callable[[Session, Notice], None]] = {
    **dict.fromkeys(risk_deadlines.KINDS, risk_deadlines.fire),
    **dict.fromkeys(incident_deadlines.KINDS, incident_deadlines.fire),
    **dict.fromkeys(review_deadlines.KINDS, review_deadlines.fire),
}
NOTICE_BATCH = 500


def fire_due_notices(database: Database) -> int:
    """Act on every due notice; each batch claims, acts and marks fired in one transaction (exactly once)."""
    fired = 0
    while True:
        with database.write() as session:
            now = utcnow()
            batch = notices.claim_due(session, now, NOTICE_BATCH)
            for notice in batch:
                HANDLERS[notice.kind](session, notice)
                notice.fired_at = now
                session.add(notice)
        fired += len(batch)
        if len(batch) < NOTICE_BATCH:
            return fired


SYSTEM = Principal(key_id=0, name="scheduler", role=Role.admin, automatic=True)


def run_periodic(database: Database) -> bool:
    """The quarterly review kick-off, once per quarter whatever the number of instances (a unique period key):
    opens the quarter's review cycle (unless someone already did), which asks every owner to review."""
    period = reviews.cycle_id_for(utcnow())
    try:
        with database.write() as session:
            done = session.exec(
                select(PeriodicRun.id).where(PeriodicRun.job == "quarterly-review", PeriodicRun.period == period)
            ).first()
            if done is not None:
                return False
            session.add(PeriodicRun(job="quarterly-review", period=period))
            session.flush()  # a racing instance fails here and rolls back whole
            if session.get(ReviewCycle, period) is None:
                reviews.open_cycle(session, period, SYSTEM)
            owners = reviews.open_risks_by_owner(session).values()  # "CISO" and "ciso" are one owner
            data = {
                "period": period, "open_risks": sum(len(o.risk_ids) for o in owners),
                "owners": {o.owner: len(o.risk_ids) for o in owners},
            }  # fmt: skip
            events.emit(session, "review.quarter_started", "review", period, data)
            return True
    except IntegrityError:
        return False


class Worker:
    """Everything a tick does; one per process, any number of processes per database."""

    def __init__(self, database: Database, settings: Settings):
        self.database = database
        self.settings = settings
        self.client = httpx.Client(
            follow_redirects=False, trust_env=False, timeout=settings.webhook_timeout_seconds,
            limits=httpx.Limits(max_connections=settings.webhook_concurrency * 2),
        )  # fmt: skip
        self.pool = ThreadPoolExecutor(settings.webhook_concurrency, thread_name_prefix="riskops-delivery")
        self._scheduler: BackgroundScheduler | None = None

    def deliver_due(self) -> int:
        """Send due webhooks concurrently, batch after batch, until none are due."""
        batch = self.settings.webhook_concurrency * 4
        # Long enough for every round of the batch to time out: a live sender never loses its claim.
        lease = timedelta(
            seconds=self.settings.webhook_timeout_seconds * (batch // self.settings.webhook_concurrency + 1)
        )
        rules = network.destinations(self.settings)
        sent = 0
        while jobs := webhooks.claim_due(self.database, batch, lease):
            outcomes = list(self.pool.map(lambda job: (job, webhooks.send(self.client, job, rules)), jobs))
            webhooks.record(self.database, outcomes, self.settings)
            sent += len(jobs)
        return sent

    def tick(self) -> dict[str, int]:
        """One pass over all due work. Errors are logged, never fatal: the next tick tries again."""
        report = {}
        for name, step in (
            ("notices", lambda: fire_due_notices(self.database)),
            ("periodic", lambda: int(run_periodic(self.database))),
            ("webhooks", self.deliver_due),
            ("emails", lambda: mail.send_due(self.database, self.settings)),
        ):
            try:
                report[name] = step()  # type: ignore[no-untyped-call]
            except Exception:
                log.exception("scheduler step %s failed; it will run again next tick", name)
                report[name] = -1
        return report

    def start(self) -> None:
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self.tick, "interval", seconds=self.settings.scheduler_tick_seconds, id="tick",
            max_instances=1, coalesce=True, next_run_time=datetime.now().astimezone(),
        )  # fmt: skip
        self._scheduler.start()
        log.info("scheduler started: a tick every %ss", self.settings.scheduler_tick_seconds)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        self.pool.shutdown(wait=True)
        self.client.close()
