"""An incident's deadlines, driven by a frozen clock and hand-cranked ticks: escalation levels and rounds to
named webhooks and e-mail, stopped by acknowledgement; the recovery-time and MTPD deadlines, stopped by the
resolution; step and communication reminders, kept until the item is finished or the incident closed."""

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from riskops.mail.models import EmailMessage
from riskops.notices.models import Notice
from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, row_counts
from tests.incidents.support import finish_obligations
from tests.receiver import Receiver, receiver

ONCALL = "oncall@example.com"
SECOND = timedelta(seconds=1)


def events(client: TestClient, event_type: str, subject: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"type": event_type, "limit": 1000}
    if subject is not None:
        params["subject"] = subject
    response = client.get("/api/v1/events", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def escalations(client: TestClient, reference: str) -> list[tuple[int, int]]:
    """(level, round) of every incident.escalated event about an incident, in the order they fired."""
    return [(e["data"]["level"], e["data"]["round"]) for e in events(client, "incident.escalated", reference)]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def tick_at(worker: Worker, clock: FrozenClock, moment: datetime, times: int = 1) -> None:
    """Move the clock to `moment` and tick, several times to show that repeats add nothing."""
    clock.advance(moment - clock.now)
    for _ in range(times):
        report = worker.tick()
        assert -1 not in report.values(), report


def subscribe(client: TestClient, keys: Keys, url: str) -> int:
    """A subscription that wants risk events only: incident escalations reach it only as a named target."""
    response = client.post(
        "/api/v1/webhooks", json={"url": url, "event_types": ["risk.*"]}, headers=keys.headers("admin")
    )
    assert response.status_code == 201, response.text
    sub_id: int = response.json()["id"]
    return sub_id


def put_default_policy(client: TestClient, keys: Keys, sub_id: int) -> None:
    policy = {
        "name": "default",
        "levels": [{"wait_minutes": 5, "webhooks": [sub_id]}, {"wait_minutes": 10, "emails": [ONCALL]}],
        "repeat": 1,
    }
    response = client.put("/api/v1/escalation-policies/default", json=policy, headers=keys.headers("admin"))
    assert response.status_code == 200, response.text
    assert response.json()["levels"][0]["webhooks"] == [sub_id] and response.json()["repeat"] == 1


def declare(client: TestClient, title: str = "Payments API returns 500s") -> dict[str, Any]:
    response = client.post("/api/v1/incidents", json={"title": title, "severity": "SEV2"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def activate(client: TestClient, slug: str = "core-service-outage") -> dict[str, Any]:
    response = client.post(f"/api/v1/playbooks/{slug}/activate", json={})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def emails_to(engine: Engine, address: str) -> list[EmailMessage]:
    with Session(engine) as session:
        query = select(EmailMessage).where(EmailMessage.to_address == address).order_by(col(EmailMessage.id))
        return list(session.exec(query))


def received(hook: Receiver) -> list[tuple[str, int, int, str]]:
    """(type, level, round, incident) of every request the receiver got."""
    bodies = [json.loads(r.body) for r in hook.requests]
    return [(b["type"], b["data"]["level"], b["data"]["round"], b["data"]["reference"]) for b in bodies]


# ---- escalation ----


def test_escalation_runs_each_level_of_each_round_once_to_its_targets(
    client: TestClient, keys: Keys, engine: Engine, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    with receiver() as hook:
        put_default_policy(client, keys, subscribe(client, keys, hook.url))
        ref = declare(client)["reference"]

        tick_at(worker, frozen_clock, start, times=2)
        tick_at(worker, frozen_clock, start + timedelta(minutes=5) - SECOND)
        assert escalations(client, ref) == [] and hook.requests == []  # incident.declared is not a risk.* event

        # Level 1, round 1: the named webhook hears of it.
        tick_at(worker, frozen_clock, start + timedelta(minutes=5), times=3)
        assert escalations(client, ref) == [(1, 1)]
        assert received(hook) == [("incident.escalated", 1, 1, ref)]
        (first,) = events(client, "incident.escalated", ref)
        assert hook.ids() == [first["message_id"]] and first["data"]["policy"] == "default"
        assert emails_to(engine, ONCALL) == []

        # Level 2, round 1: an e-mail is queued (no SMTP host in this worker, so it stays pending).
        tick_at(worker, frozen_clock, start + timedelta(minutes=15) - SECOND)
        assert escalations(client, ref) == [(1, 1)]
        tick_at(worker, frozen_clock, start + timedelta(minutes=15), times=3)
        assert escalations(client, ref) == [(1, 1), (2, 1)]
        (mail,) = emails_to(engine, ONCALL)
        assert mail.status == "pending" and mail.attempts == 0
        assert ref in mail.subject and "escalated" in mail.subject
        assert len(hook.requests) == 1  # level 2 names no webhook

        # Round 2 repeats both levels at 20 and 30 minutes.
        tick_at(worker, frozen_clock, start + timedelta(minutes=20), times=3)
        assert escalations(client, ref) == [(1, 1), (2, 1), (1, 2)]
        assert received(hook) == [("incident.escalated", 1, 1, ref), ("incident.escalated", 1, 2, ref)]
        assert len(set(hook.ids())) == 2
        assert len(emails_to(engine, ONCALL)) == 1
        tick_at(worker, frozen_clock, start + timedelta(minutes=30), times=3)
        assert escalations(client, ref) == [(1, 1), (2, 1), (1, 2), (2, 2)]
        assert len(emails_to(engine, ONCALL)) == 2

        # Then nothing more: repeat 1 means two rounds in all.
        for minutes in (31, 60, 240, 24 * 60):
            tick_at(worker, frozen_clock, start + timedelta(minutes=minutes), times=2)
        assert escalations(client, ref) == [(1, 1), (2, 1), (1, 2), (2, 2)]
        assert len(hook.requests) == 2 and len(emails_to(engine, ONCALL)) == 2


def test_acknowledging_stops_escalation(
    client: TestClient, keys: Keys, engine: Engine, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    with receiver() as hook:
        put_default_policy(client, keys, subscribe(client, keys, hook.url))
        ignored = declare(client, "Card processor timeouts")["reference"]
        handled = declare(client, "Core database failover")["reference"]

        tick_at(worker, frozen_clock, start + timedelta(minutes=3))
        response = client.post(f"/api/v1/incidents/{handled}/acknowledge", json={"note": "on it"})
        assert response.status_code == 200, response.text

        for minutes in (5, 15, 20, 30, 60, 24 * 60):
            tick_at(worker, frozen_clock, start + timedelta(minutes=minutes), times=2)
        assert escalations(client, handled) == []
        assert escalations(client, ignored) == [(1, 1), (2, 1), (1, 2), (2, 2)]
        assert {incident for *_, incident in received(hook)} == {ignored}
        assert all(handled not in m.subject for m in emails_to(engine, ONCALL))
        assert len(emails_to(engine, ONCALL)) == 2


def test_acknowledging_between_levels_stops_the_remaining_ones(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    with receiver() as hook:
        put_default_policy(client, keys, subscribe(client, keys, hook.url))
        ref = declare(client)["reference"]
        tick_at(worker, frozen_clock, start + timedelta(minutes=6), times=2)
        assert escalations(client, ref) == [(1, 1)]
        assert client.post(f"/api/v1/incidents/{ref}/acknowledge", json={}).status_code == 200
        tick_at(worker, frozen_clock, start + timedelta(hours=2), times=2)
        assert escalations(client, ref) == [(1, 1)]
        assert len(hook.requests) == 1


# ---- the recovery-time breach ----


def breach_events(client: TestClient, reference: str) -> list[str]:
    return [e["type"] for e in events(client, "incident.breach*", reference)]


def test_breach_warning_and_breach_fire_once_each(
    client: TestClient, playbooks: Path, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    incident = activate(client)
    ref = incident["reference"]
    assert incident["rto_minutes"] == 120
    assert at(incident["breach_at"]) == start + timedelta(minutes=120)

    tick_at(worker, frozen_clock, start + timedelta(minutes=90) - SECOND, times=2)
    assert breach_events(client, ref) == []
    tick_at(worker, frozen_clock, start + timedelta(minutes=90), times=3)  # 120 - 30 minutes' warning
    assert breach_events(client, ref) == ["incident.breach_imminent"]
    tick_at(worker, frozen_clock, start + timedelta(minutes=120) - SECOND, times=2)
    assert breach_events(client, ref) == ["incident.breach_imminent"]
    tick_at(worker, frozen_clock, start + timedelta(minutes=120), times=3)
    assert breach_events(client, ref) == ["incident.breach_imminent", "incident.breached"]
    (breached,) = events(client, "incident.breached", ref)
    assert (
        at(breached["data"]["breach_at"]) == at(incident["breach_at"])
        and breached["data"]["playbook"] == incident["playbook"]
    )

    tick_at(worker, frozen_clock, start + timedelta(days=2), times=2)
    assert breach_events(client, ref) == ["incident.breach_imminent", "incident.breached"]


def test_resolving_before_the_warning_cancels_both_breach_notices(
    client: TestClient, playbooks: Path, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    resolved = activate(client)["reference"]
    still_open = activate(client)["reference"]

    tick_at(worker, frozen_clock, start + timedelta(minutes=40))
    for action in ("acknowledge", "mitigate", "resolve"):
        response = client.post(f"/api/v1/incidents/{resolved}/{action}", json={})
        assert response.status_code == 200, response.text

    for minutes in (89, 90, 120, 600):
        tick_at(worker, frozen_clock, start + timedelta(minutes=minutes), times=2)
    assert breach_events(client, resolved) == []
    assert breach_events(client, still_open) == ["incident.breach_imminent", "incident.breached"]


# ---- step deadlines ----


def step_events(client: TestClient, reference: str, step: str) -> list[str]:
    """The deadline notices (step.due, step.overdue) about one step, in the order they fired."""
    found = events(client, "step.*", reference)
    return [e["type"] for e in found if e["type"] in ("step.due", "step.overdue") and e["data"]["step"] == step]


def test_step_reminder_before_its_deadline_and_overdue_at_it(
    client: TestClient, playbooks: Path, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    incident = activate(client)
    ref = incident["reference"]
    step = next(s for s in incident["steps"] if s["key"] == "check-dependencies")
    due = at(step["due_at"])
    assert due == start + timedelta(minutes=20)

    tick_at(worker, frozen_clock, due - timedelta(minutes=10) - SECOND, times=2)
    assert step_events(client, ref, "check-dependencies") == []
    tick_at(worker, frozen_clock, due - timedelta(minutes=10), times=3)
    assert step_events(client, ref, "check-dependencies") == ["step.due"]
    (reminder,) = [e for e in events(client, "step.due", ref) if e["data"]["step"] == "check-dependencies"]
    assert at(reminder["data"]["due_at"]) == due and reminder["data"]["step_title"] == step["title"]
    tick_at(worker, frozen_clock, due - SECOND, times=2)
    assert step_events(client, ref, "check-dependencies") == ["step.due"]
    tick_at(worker, frozen_clock, due, times=3)
    assert step_events(client, ref, "check-dependencies") == ["step.due", "step.overdue"]
    tick_at(worker, frozen_clock, due + timedelta(hours=5), times=2)
    assert step_events(client, ref, "check-dependencies") == ["step.due", "step.overdue"]


def test_a_reminder_that_would_fall_before_the_declaration_fires_at_once(
    client: TestClient, playbooks: Path, worker: Worker, frozen_clock: FrozenClock
) -> None:
    """triage-and-declare is due 10 minutes in: its 10-minute reminder is due at the declaration itself."""
    ref = activate(client)["reference"]
    tick_at(worker, frozen_clock, frozen_clock.now, times=2)
    assert step_events(client, ref, "triage-and-declare") == ["step.due"]


def test_completing_a_step_cancels_its_reminders(
    client: TestClient, playbooks: Path, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    ref = activate(client)["reference"]
    tick_at(worker, frozen_clock, start, times=2)
    assert step_events(client, ref, "triage-and-declare") == ["step.due"]

    tick_at(worker, frozen_clock, start + timedelta(minutes=5))
    for key in ("triage-and-declare", "check-dependencies"):
        response = client.post(f"/api/v1/incidents/{ref}/steps/{key}/complete")
        assert response.status_code == 200, response.text

    for minutes in (10, 15, 20, 60):
        tick_at(worker, frozen_clock, start + timedelta(minutes=minutes), times=2)
    assert step_events(client, ref, "triage-and-declare") == ["step.due"]  # its overdue notice was dropped
    assert step_events(client, ref, "check-dependencies") == []
    assert step_events(client, ref, "freeze-changes") == ["step.due", "step.overdue"]  # left undone


# ---- the maximum tolerable period of disruption ----


def mtpd_events(client: TestClient, reference: str) -> list[str]:
    return [e["type"] for e in events(client, "incident.mtpd*", reference)]


def test_mtpd_warning_and_breach_fire_once_each_to_every_target_of_the_policy(
    client: TestClient, keys: Keys, engine: Engine, playbooks: Path, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    with receiver() as hook:
        put_default_policy(client, keys, subscribe(client, keys, hook.url))
        incident = activate(client)
        ref, mtpd_at = incident["reference"], start + timedelta(minutes=480)
        assert incident["mtpd_minutes"] == 480 and at(incident["mtpd_at"]) == mtpd_at
        # Acknowledged at once: the policy's targets hear of the deadlines only, not of escalation.
        assert client.post(f"/api/v1/incidents/{ref}/acknowledge").status_code == 200

        tick_at(worker, frozen_clock, mtpd_at - timedelta(minutes=30) - SECOND, times=2)
        assert mtpd_events(client, ref) == []
        tick_at(worker, frozen_clock, mtpd_at - timedelta(minutes=30), times=3)
        assert mtpd_events(client, ref) == ["incident.mtpd_imminent"]
        tick_at(worker, frozen_clock, mtpd_at - SECOND, times=2)
        assert mtpd_events(client, ref) == ["incident.mtpd_imminent"]
        assert client.get(f"/api/v1/incidents/{ref}").json()["measures"]["mtpd_exceeded"] is False
        tick_at(worker, frozen_clock, mtpd_at, times=3)
        tick_at(worker, frozen_clock, mtpd_at + timedelta(days=2), times=2)
        assert mtpd_events(client, ref) == ["incident.mtpd_imminent", "incident.mtpd_breached"]
        assert client.get(f"/api/v1/incidents/{ref}").json()["measures"]["mtpd_exceeded"] is True

        (breached,) = events(client, "incident.mtpd_breached", ref)
        assert at(breached["data"]["mtpd_at"]) == mtpd_at and breached["data"]["state"] == "acknowledged"
        delivered = sorted(json.loads(r.body)["type"] for r in hook.requests)  # sent concurrently: any order
        assert delivered == [
            "incident.breach_imminent", "incident.breached", "incident.mtpd_breached", "incident.mtpd_imminent",
        ]  # fmt: skip
        subjects = [m.subject for m in emails_to(engine, ONCALL)]
        assert [s.split(": ")[0] for s in subjects] == [
            f"[riskops] {ref} {what}" for what in ("breach imminent", "breached", "mtpd imminent", "mtpd breached")
        ]


def test_resolving_stops_the_mtpd_watch_and_reopening_restarts_it(
    client: TestClient, playbooks: Path, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    resolved, still_open = activate(client)["reference"], activate(client)["reference"]
    tick_at(worker, frozen_clock, start + timedelta(minutes=60))
    for action in ("acknowledge", "mitigate", "resolve"):
        assert client.post(f"/api/v1/incidents/{resolved}/{action}").status_code == 200

    for minutes in (450, 480, 600):
        tick_at(worker, frozen_clock, start + timedelta(minutes=minutes), times=2)
    assert mtpd_events(client, resolved) == [] and breach_events(client, resolved) == []
    assert mtpd_events(client, still_open) == ["incident.mtpd_imminent", "incident.mtpd_breached"]

    # Reopened past both deadlines: the notices it was spared fire at the next tick, once.
    assert client.post(f"/api/v1/incidents/{resolved}/reopen").status_code == 200
    tick_at(worker, frozen_clock, frozen_clock.now, times=3)
    tick_at(worker, frozen_clock, start + timedelta(days=3), times=2)
    assert mtpd_events(client, resolved) == ["incident.mtpd_imminent", "incident.mtpd_breached"]
    assert breach_events(client, resolved) == ["incident.breach_imminent", "incident.breached"]
    assert mtpd_events(client, still_open) == ["incident.mtpd_imminent", "incident.mtpd_breached"]


# ---- obligations after the resolution ----


def communication_events(client: TestClient, reference: str, key: str) -> list[str]:
    return [e["type"] for e in events(client, "communication.*", reference) if e["data"]["communication"] == key]


def pending_notices(engine: Engine) -> list[Notice]:
    with Session(engine) as session:
        return list(session.exec(select(Notice).where(col(Notice.fired_at).is_(None))))


def test_a_step_due_long_after_the_resolution_is_still_reminded_of(
    client: TestClient, playbooks: Path, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    incident = activate(client)
    ref = incident["reference"]
    review = next(s for s in incident["steps"] if s["key"] == "post-incident-review")
    due = at(review["due_at"])
    assert due == start + timedelta(days=5)
    tick_at(worker, frozen_clock, start + timedelta(minutes=30))
    for action in ("acknowledge", "mitigate", "resolve"):
        assert client.post(f"/api/v1/incidents/{ref}/{action}").status_code == 200

    tick_at(worker, frozen_clock, due - timedelta(minutes=10) - SECOND, times=2)
    assert step_events(client, ref, "post-incident-review") == []
    tick_at(worker, frozen_clock, due - timedelta(minutes=10), times=2)
    assert step_events(client, ref, "post-incident-review") == ["step.due"]
    tick_at(worker, frozen_clock, due, times=2)
    tick_at(worker, frozen_clock, due + SECOND)
    assert step_events(client, ref, "post-incident-review") == ["step.due", "step.overdue"]
    (overdue,) = [e for e in events(client, "step.overdue", ref) if e["data"]["step"] == "post-incident-review"]
    assert overdue["data"]["state"] == "resolved"
    shown = client.get(f"/api/v1/incidents/{ref}").json()
    assert shown["state"] == "resolved" and shown["steps"][-1]["overdue"] is True
    assert breach_events(client, ref) == [] and mtpd_events(client, ref) == []


def test_a_communication_is_reminded_of_until_sent_whatever_the_state(
    client: TestClient, playbooks: Path, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    incident = activate(client)
    ref = incident["reference"]
    planned = {m["key"]: m for m in incident["communications"]}
    due = at(planned["status-page-initial"]["due_at"])
    assert due == at(planned["staff-notice"]["due_at"]) == start + timedelta(minutes=15)

    tick_at(worker, frozen_clock, start + timedelta(minutes=1))
    assert client.post(f"/api/v1/incidents/{ref}/communications/staff-notice/sent", json={}).status_code == 200
    tick_at(worker, frozen_clock, due - timedelta(minutes=10) - SECOND, times=2)
    assert communication_events(client, ref, "status-page-initial") == []
    tick_at(worker, frozen_clock, due - timedelta(minutes=10), times=2)
    assert communication_events(client, ref, "status-page-initial") == ["communication.due"]
    tick_at(worker, frozen_clock, due, times=2)
    assert communication_events(client, ref, "status-page-initial") == ["communication.due", "communication.overdue"]
    assert communication_events(client, ref, "staff-notice") == []  # sent before its reminder
    (reminder,) = [
        e for e in events(client, "communication.due", ref) if e["data"]["communication"] == "status-page-initial"
    ]
    assert reminder["data"]["communication_title"] == planned["status-page-initial"]["title"]
    assert reminder["data"]["audience"] == "customers" and at(reminder["data"]["due_at"]) == due
    assert reminder["data"]["reference"] == ref and reminder["data"]["playbook"] == "core-service-outage"

    # Resolved before the partner notice falls due: it is still owed, and said so.
    tick_at(worker, frozen_clock, start + timedelta(minutes=20))
    for action in ("acknowledge", "mitigate", "resolve"):
        assert client.post(f"/api/v1/incidents/{ref}/{action}").status_code == 200
    for minutes in (50, 60, 24 * 60):
        tick_at(worker, frozen_clock, start + timedelta(minutes=minutes), times=2)
    assert communication_events(client, ref, "partner-notice") == ["communication.due", "communication.overdue"]
    assert communication_events(client, ref, "status-page-initial") == ["communication.due", "communication.overdue"]


def test_closing_drops_the_reminders_of_optional_items_left_open(
    client: TestClient, engine: Engine, playbooks: Path, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    incident = activate(client, "personal-data-breach")
    ref = incident["reference"]
    finish_obligations(client, incident)
    for action in ("acknowledge", "mitigate", "resolve"):
        assert client.post(f"/api/v1/incidents/{ref}/{action}").status_code == 200
    # Left: the two optional messages' reminders and overdue notices.
    assert sorted(n.kind for n in pending_notices(engine)) == ["communication.due"] * 2 + ["communication.overdue"] * 2
    summary = {"what_happened": "Misdirected export.", "impact": "1,200 customers.", "root_cause": "Shared alias."}
    closed = client.post(f"/api/v1/incidents/{ref}/close", json={"summary": summary})
    assert closed.status_code == 200, closed.text
    assert pending_notices(engine) == []

    for days in (1, 2, 3):
        tick_at(worker, frozen_clock, start + timedelta(days=days), times=2)
    assert events(client, "communication.*", ref) == []


def test_a_deadline_already_past_at_the_declaration_is_reminded_of_at_the_first_tick(
    client: TestClient, engine: Engine, playbooks: Path, worker: Worker, frozen_clock: FrozenClock
) -> None:
    start = frozen_clock.now
    detected = (start - timedelta(days=4)).isoformat()
    response = client.post("/api/v1/playbooks/personal-data-breach/activate", json={"detected_at": detected})
    assert response.status_code == 201, response.text
    ref = response.json()["reference"]
    assert min(n.due_at for n in pending_notices(engine)) == start  # never before the declaration

    tick_at(worker, frozen_clock, start, times=2)
    assert step_events(client, ref, "notify-supervisory-authority") == ["step.due", "step.overdue"]
    regulator = communication_events(client, ref, "supervisory-authority-notification")
    assert regulator == ["communication.due", "communication.overdue"]
    assert step_events(client, ref, "triage-and-confirm") == []  # counted from the declaration: due in 30 minutes


# ---- policies ----


def test_a_policy_naming_an_unknown_webhook_is_refused(client: TestClient, keys: Keys, engine: Engine) -> None:
    with receiver() as hook:
        sub_id = subscribe(client, keys, hook.url)
    before = row_counts(engine)
    policy = {
        "name": "default",
        "levels": [{"wait_minutes": 5, "webhooks": [sub_id]}, {"wait_minutes": 5, "webhooks": [sub_id + 999]}],
    }
    response = client.put("/api/v1/escalation-policies/default", json=policy, headers=keys.headers("admin"))
    assert_problem(response, 422, "body.levels.1.webhooks")
    assert row_counts(engine) == before
    assert client.get("/api/v1/escalation-policies/default").status_code == 404


def test_only_an_admin_may_publish_a_policy(client: TestClient, keys: Keys, engine: Engine) -> None:
    policy = {"name": "default", "levels": [{"wait_minutes": 5, "emails": [ONCALL]}]}
    before = row_counts(engine)
    for role in ("read", "write"):
        response = client.put("/api/v1/escalation-policies/default", json=policy, headers=keys.headers(role))
        assert_problem(response, 403)
    assert row_counts(engine) == before
    assert (
        client.put("/api/v1/escalation-policies/default", json=policy, headers=keys.headers("admin")).status_code == 200
    )
