"""The KRIs' timed work, for the worker: stale and escalation notices, Prometheus pulls and the daily roll-up."""

from riskops.kris import alerts, prometheus, rollup
from riskops.notices.service import NoticeHandler, PeriodicJob

NOTICE_HANDLERS: dict[str, NoticeHandler] = alerts.NOTICE_HANDLERS
PERIODIC_JOBS: dict[str, PeriodicJob] = {"kri.pull": prometheus.pull_due, rollup.JOB: rollup.roll_up}
