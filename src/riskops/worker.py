"""The worker: APScheduler ticks, and each tick does whatever the database says is due.

A tick fires due notices (each kind dispatched to the handler its domain's `scheduled.py` registers), runs
the domains' periodic jobs, and sends due webhooks and e-mail. Any number of processes may run it.
"""

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from prometheus_client import Histogram

from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.controls import scheduled as controls
from riskops.db import Database
from riskops.incidents import scheduled as incidents
from riskops.kris import scheduled as kris
from riskops.mail import service as mail
from riskops.notices import service as notices
from riskops.notices.service import NoticeHandler, PeriodicJob
from riskops.reviews import scheduled as reviews
from riskops.risks import import_jobs
from riskops.risks import scheduled as risks
from riskops.risks.acceptances import scheduled as acceptances
from riskops.treatments import scheduled as treatments
from riskops.users import scheduled as users
from riskops.webhooks import delivery, network

log = logging.getLogger(__name__)

NOTICE_BATCH = 500
# A tick's duration: an idle tick is an index lookup (under a millisecond); a large backlog takes seconds.
TICK_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# No tick ended for this many intervals (and at least this long): the scheduler is stalled; /readyz says so.
STALE_TICKS, STALE_MINIMUM_SECONDS = 5, 30.0


def _merged(*registries: Mapping[str, NoticeHandler]) -> dict[str, NoticeHandler]:
    merged: dict[str, NoticeHandler] = {}
    for registry in registries:
        if clash := merged.keys() & registry.keys():
            raise RuntimeError(f"notice kinds registered twice: {sorted(clash)}")
        merged.update(registry)
    return merged


HANDLERS = _merged(
    risks.NOTICE_HANDLERS, incidents.NOTICE_HANDLERS, reviews.NOTICE_HANDLERS,
    treatments.NOTICE_HANDLERS,
    acceptances.NOTICE_HANDLERS,
    controls.NOTICE_HANDLERS,
    kris.NOTICE_HANDLERS,
)  # fmt: skip
PERIODIC_JOBS: dict[str, PeriodicJob] = {**reviews.PERIODIC_JOBS, **import_jobs.PERIODIC_JOBS, **users.PERIODIC_JOBS}
PERIODIC_JOBS.update(kris.PERIODIC_JOBS)


def fire_due_notices(database: Database, settings: Settings) -> int:
    """Act on every due notice; each batch claims, acts and marks fired in one transaction (exactly once)."""
    fired = 0
    while True:
        with database.write() as session:
            now = utcnow()
            batch = notices.claim_due(session, now, NOTICE_BATCH)
            for notice in batch:
                HANDLERS[notice.kind](session, notice, settings)
                notice.fired_at = now
                session.add(notice)
        fired += len(batch)
        if len(batch) < NOTICE_BATCH:
            return fired


def run_periodic(database: Database, settings: Settings) -> int:
    """Every periodic job once; each claims its own period, so one instance of many runs it."""
    return sum(job(database, settings) for job in PERIODIC_JOBS.values())


class Worker:
    """Everything a tick does; one per process, any number of processes per database."""

    def __init__(self, database: Database, settings: Settings):
        self.database = database
        self.settings = settings
        self.client = network.new_client(settings)
        self.pool = ThreadPoolExecutor(settings.webhook_concurrency, thread_name_prefix="riskops-delivery")
        self._scheduler: BackgroundScheduler | None = None
        # On the service's clock, for /readyz: when the scheduler started, and when its last tick ended.
        self.started_at: datetime | None = None
        self.last_tick_at: datetime | None = None
        # This process's ticks; /metrics shows them where `serve` runs the scheduler (metrics.SchedulerCollector).
        self.tick_seconds = Histogram(
            "riskops_scheduler_tick_duration_seconds", "How long this process's scheduler ticks took.",
            buckets=TICK_BUCKETS, registry=None,
        )  # fmt: skip

    @property
    def stale_after(self) -> float:
        """Seconds without a finished tick after which the scheduler counts as stalled."""
        return max(STALE_TICKS * self.settings.scheduler_tick_seconds, STALE_MINIMUM_SECONDS)

    def since_last_tick(self, now: datetime) -> float | None:
        """Seconds since the last tick ended (since the start, before the first); None if never started."""
        last = self.last_tick_at or self.started_at
        return None if last is None else (now - last).total_seconds()

    def deliver_due(self) -> int:
        return delivery.deliver_due(self.database, self.settings, self.client, self.pool)

    def tick(self) -> dict[str, int]:
        """One pass over all due work. Errors are logged, never fatal: the next tick tries again."""
        steps: dict[str, Callable[[], int]] = {
            "notices": lambda: fire_due_notices(self.database, self.settings),
            "periodic": lambda: run_periodic(self.database, self.settings),
            "webhooks": self.deliver_due,
            "emails": lambda: mail.send_due(self.database, self.settings),
        }
        began = time.perf_counter()
        report = {}
        for name, step in steps.items():
            try:
                report[name] = step()
            except Exception:
                log.exception("worker step %s failed; it will run again next tick", name)
                report[name] = -1
        seconds = time.perf_counter() - began
        self.tick_seconds.observe(seconds)
        self.last_tick_at = utcnow()
        # A tick that found nothing to do is routine: at info, every few seconds, it would bury everything else.
        log.log(logging.INFO if any(report.values()) else logging.DEBUG, "tick in %.3fs: %s", seconds, report)
        return report

    def start(self) -> None:
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self.tick, "interval", seconds=self.settings.scheduler_tick_seconds, id="tick",
            max_instances=1, coalesce=True, next_run_time=datetime.now().astimezone(),
        )  # fmt: skip
        self.started_at = utcnow()
        self._scheduler.start()
        log.info("scheduler started: a tick every %ss", self.settings.scheduler_tick_seconds)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        self.pool.shutdown(wait=True)
        self.client.close()
