"""What every inbound format comes down to: a signal (a key, an action, what to call it, its labels), and the
route an integration gives it."""

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Literal

from riskops.crisis import Severity
from riskops.integrations.models import AlertmanagerPayload, GenericAlert, Integration, PagerDutyEvent, Route

Action = Literal["trigger", "acknowledge", "resolve"]


@dataclass
class Instance:
    fingerprint: str
    starts_at: str
    status: Literal["firing", "resolved"]
    labels: dict[str, str]


@dataclass
class Signal:
    key: str
    action: Action
    title: str = ""
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    severity: Severity | None = None
    instances: list[Instance] = field(default_factory=list)


_SEVERITY = {
    "critical": Severity.sev1, "page": Severity.sev1, "error": Severity.sev2, "major": Severity.sev2,
    "high": Severity.sev2, "warning": Severity.sev3, "minor": Severity.sev3, "info": Severity.sev4,
}  # fmt: skip


def from_alertmanager(payload: AlertmanagerPayload) -> Signal:
    first = payload.alerts[0]
    labels = {**first.labels, **payload.commonLabels}
    name = labels.get("alertname", "alert")
    summary = payload.commonAnnotations.get("summary") or first.annotations.get("summary", "")
    return Signal(
        key=payload.groupKey, action="trigger" if payload.status == "firing" else "resolve",
        title=f"{name}: {summary}" if summary else name,
        description="\n".join(filter(None, (payload.commonAnnotations.get("description"), payload.externalURL))),
        labels=labels, severity=_SEVERITY.get(labels.get("severity", "").lower()),
        instances=[
            Instance(a.fingerprint or hashlib.sha256(repr(sorted(a.labels.items())).encode()).hexdigest()[:16],
                     a.startsAt, a.status, a.labels)
            for a in payload.alerts
        ],
    )  # fmt: skip


def from_pagerduty(event: PagerDutyEvent, dedup_key: str) -> Signal:
    labels: dict[str, str] = {}
    title = ""
    if event.payload is not None:
        p = event.payload
        fields = {
            "severity": p.severity, "source": p.source, "component": p.component, "group": p.group,
            "class": p.class_, "summary": p.summary,
        }  # fmt: skip
        labels = {k: v for k, v in fields.items() if v}
        title = p.summary
    details = event.payload.custom_details if event.payload else None
    return Signal(
        key=dedup_key, action=event.event_action, title=title[:200],
        description="" if details is None else (details if isinstance(details, str) else json.dumps(details))[:20000],
        labels=labels, severity=_SEVERITY.get(labels.get("severity", "")),
    )  # fmt: skip


def from_generic(alert: GenericAlert) -> Signal:
    labels = dict(alert.labels)
    if alert.severity:
        labels.setdefault("severity", str(alert.severity))
    return Signal(
        key=alert.dedup_key, action=alert.action, title=alert.title or "", description=alert.details,
        labels=labels, severity=alert.severity,
    )  # fmt: skip


def route_for(integration: Integration, labels: dict[str, str]) -> Route:
    for raw in integration.routes:
        route = Route.model_validate(raw)
        if all(_holds(m.op, labels.get(m.label), m.value) for m in route.matchers):
            return route
    return Route.model_validate(integration.default_route)


def _holds(op: str, actual: str | None, wanted: str) -> bool:
    if op == "=":
        return actual == wanted
    if op == "!=":
        return actual != wanted
    return actual is not None and re.fullmatch(wanted, actual) is not None
