"""A flapping alert: a re-firing soon after its incident resolved reopens that incident, for every kind of sender."""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.app import create_app
from riskops.config import Settings
from tests.conftest import FrozenClock, Keys
from tests.helpers import running_service
from tests.integrations.support import am_alert, am_body, bearer, incident, incidents, make_integration, received

ENDPOINT = "/api/v1/inbound/generic"
PLAYBOOK = "core-service-outage"
SUMMARY = {"what_happened": "The primary database stopped.", "impact": "Payments failed.", "root_cause": "Disk."}


@dataclass
class Sender:
    """One kind of integration, speaking its own format about one alert source (a group or a dedup key)."""

    kind: str
    client: TestClient
    token: str

    def fire(self, starts_at: str) -> None:
        """A firing; Alertmanager says when it started, which tells a new firing from a re-delivered one."""
        self._send("trigger", starts_at)

    def resolve(self, starts_at: str) -> None:
        self._send("resolve", starts_at)

    def _send(self, action: str, starts_at: str) -> None:
        if self.kind == "alertmanager":
            alert = am_alert("fp-flapping", starts_at=starts_at)
            if action == "resolve":
                alert = {**alert, "status": "resolved", "endsAt": starts_at}
            response = self.client.post(
                "/api/v1/inbound/alertmanager", json=am_body([alert]), headers=bearer(self.token)
            )
        elif self.kind == "pagerduty-events-v2":
            event: dict[str, Any] = {"routing_key": self.token, "event_action": action, "dedup_key": "db/primary"}
            if action == "trigger":
                event["payload"] = {"summary": "Primary database down", "source": "db-1", "severity": "critical"}
            response = self.client.post(
                "/api/v1/inbound/pagerduty/v2/enqueue", json=event, headers={"Authorization": ""}
            )
        else:
            alert = {"action": action, "dedup_key": "db/primary", "title": "Primary database down", "severity": "SEV1"}
            response = self.client.post(ENDPOINT, json=alert, headers=bearer(self.token))
        assert response.status_code == 202, response.text


KINDS = ["alertmanager", "pagerduty-events-v2", "generic"]


def _sender(client: TestClient, keys: Keys, kind: str, playbook: str | None = PLAYBOOK) -> tuple[Sender, int]:
    integration = make_integration(client, keys, kind, default_route={"playbook": playbook})
    return Sender(kind, client, integration["token"]), integration["id"]


def _last(client: TestClient, keys: Keys, integration_id: int) -> dict[str, Any]:
    """What the latest body received did."""
    return received(client, keys, integration_id)[-1]


def _now(clock: FrozenClock) -> str:
    return clock.now.isoformat().replace("+00:00", "Z")


def _timeline(client: TestClient, incident_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/incidents/{incident_id}/timeline")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _events(client: TestClient, type_: str, subject: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/events", params={"type": type_, "subject": subject})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _by_people(client: TestClient, incident_id: int, *actions: str) -> None:
    for action in actions:
        body = {"summary": SUMMARY} if action == "close" else {}
        response = client.post(f"/api/v1/incidents/{incident_id}/{action}", json=body)
        assert response.status_code == 200, response.text


def _opened_and_resolved(
    client: TestClient, keys: Keys, kind: str, clock: FrozenClock, playbook: str | None = PLAYBOOK
) -> tuple[Sender, int, int]:
    """An alert fired, its incident ran the playbook, and the alert resolved ten minutes later."""
    sender, integration_id = _sender(client, keys, kind, playbook)
    started = _now(clock)
    sender.fire(started)
    opened = _last(client, keys, integration_id)
    assert opened["outcome"] == "opened"
    clock.advance(timedelta(minutes=10))
    sender.resolve(started)
    assert _last(client, keys, integration_id)["outcome"] == "resolved"
    assert incident(client, opened["incident_id"])["state"] == "resolved"
    return sender, integration_id, opened["incident_id"]


@pytest.mark.parametrize("kind", KINDS)
def test_refiring_within_the_window_reopens_the_same_incident(
    client: TestClient, keys: Keys, playbooks: Path, frozen_clock: FrozenClock, kind: str
) -> None:
    sender, integration_id, first = _opened_and_resolved(client, keys, kind, frozen_clock)
    before = incident(client, first)
    assert before["playbook"] == PLAYBOOK and before["steps"]

    frozen_clock.advance(timedelta(minutes=5))
    sender.fire(_now(frozen_clock))  # Alertmanager: a new firing of the group, with its own startsAt

    row = _last(client, keys, integration_id)
    assert row["outcome"] == "reopened" and row["incident_id"] == first
    assert "within 30 minutes" in row["detail"]
    reopened = incident(client, first)
    assert reopened["reference"] == before["reference"]
    assert reopened["state"] == "acknowledged" and reopened["resolved_at"] is None
    assert [i["id"] for i in incidents(client)] == [first]

    timeline = _timeline(client, first)
    change = [e for e in timeline if e["kind"] == "state.changed"][-1]
    assert (change["data"]["from"], change["data"]["to"]) == ("resolved", "acknowledged")
    assert change["actor"] == "integration:monitoring"
    assert timeline[-1]["kind"] == "note" and "fired again within 30 minutes" in timeline[-1]["text"]
    changes = _events(client, "incident.state_changed", before["reference"])
    assert changes[-1]["data"]["action"] == "reopen" and changes[-1]["data"]["to"] == "acknowledged"

    # The playbook is not activated again: one activation, the same steps.
    assert len(_events(client, "playbook.activated", before["reference"])) == 1
    assert [e["kind"] for e in timeline].count("playbook.activated") == 1
    assert [s["key"] for s in reopened["steps"]] == [s["key"] for s in before["steps"]]


@pytest.mark.parametrize("kind", KINDS)
def test_retry_after_the_reopen_attaches_and_the_next_resolution_resolves_it(
    client: TestClient, keys: Keys, playbooks: Path, frozen_clock: FrozenClock, kind: str
) -> None:
    sender, integration_id, first = _opened_and_resolved(client, keys, kind, frozen_clock)
    frozen_clock.advance(timedelta(minutes=5))
    again = _now(frozen_clock)
    sender.fire(again)
    frozen_clock.advance(timedelta(seconds=30))
    sender.fire(again)  # the sender retries the same body: the group is open again, so it attaches

    rows = received(client, keys, integration_id)
    assert [r["outcome"] for r in rows] == ["opened", "resolved", "reopened", "attached"]
    assert {r["incident_id"] for r in rows} == {first}

    frozen_clock.advance(timedelta(minutes=5))
    sender.resolve(again)
    assert _last(client, keys, integration_id)["outcome"] == "resolved"
    assert incident(client, first)["state"] == "resolved"
    assert len(incidents(client)) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_refiring_after_the_window_opens_a_new_incident(
    client: TestClient, keys: Keys, playbooks: Path, frozen_clock: FrozenClock, kind: str
) -> None:
    sender, integration_id, first = _opened_and_resolved(client, keys, kind, frozen_clock)
    frozen_clock.advance(timedelta(minutes=31))
    sender.fire(_now(frozen_clock))

    row = _last(client, keys, integration_id)
    assert row["outcome"] == "opened" and row["incident_id"] != first
    assert incident(client, first)["state"] == "resolved"
    assert incident(client, row["incident_id"])["state"] == "declared"
    assert len(incidents(client)) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_refiring_after_people_closed_the_incident_opens_a_new_one(
    client: TestClient, keys: Keys, playbooks: Path, frozen_clock: FrozenClock, kind: str
) -> None:
    # No playbook: closing would otherwise wait for its required steps and messages.
    sender, integration_id, first = _opened_and_resolved(client, keys, kind, frozen_clock, playbook=None)
    frozen_clock.advance(timedelta(minutes=2))
    _by_people(client, first, "close")
    frozen_clock.advance(timedelta(minutes=3))
    sender.fire(_now(frozen_clock))

    row = _last(client, keys, integration_id)
    assert row["outcome"] == "opened" and row["incident_id"] != first
    assert incident(client, first)["state"] == "closed"
    assert sorted(i["state"] for i in incidents(client)) == ["closed", "declared"]


@pytest.mark.parametrize("kind", KINDS)
def test_incident_people_resolved_while_the_alert_fired_is_reopened_by_its_next_firing(
    client: TestClient, keys: Keys, playbooks: Path, frozen_clock: FrozenClock, kind: str
) -> None:
    sender, integration_id = _sender(client, keys, kind)
    started = _now(frozen_clock)
    sender.fire(started)
    first = _last(client, keys, integration_id)["incident_id"]
    _by_people(client, first, "acknowledge", "mitigate", "resolve")  # the alert never said it cleared

    frozen_clock.advance(timedelta(minutes=5))
    sender.fire(started)  # Alertmanager repeats the notification while the alert still fires

    assert _last(client, keys, integration_id)["outcome"] == "reopened"
    assert incident(client, first)["state"] == "acknowledged"
    assert len(incidents(client)) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_incident_people_resolved_while_the_alert_fired_and_refiring_after_the_window_opens_anew(
    client: TestClient, keys: Keys, playbooks: Path, frozen_clock: FrozenClock, kind: str
) -> None:
    sender, integration_id = _sender(client, keys, kind)
    started = _now(frozen_clock)
    sender.fire(started)
    first = _last(client, keys, integration_id)["incident_id"]
    _by_people(client, first, "acknowledge", "mitigate", "resolve")

    frozen_clock.advance(timedelta(minutes=45))
    sender.fire(started)

    row = _last(client, keys, integration_id)
    assert row["outcome"] == "opened" and row["incident_id"] != first
    assert incident(client, first)["state"] == "resolved"
    frozen_clock.advance(timedelta(minutes=1))
    sender.fire(started)  # and the group it opened takes the next news
    assert _last(client, keys, integration_id)["outcome"] == "attached"
    assert len(incidents(client)) == 2


def test_stale_redelivery_of_the_resolved_firing_changes_nothing_and_a_new_firing_reopens(
    client: TestClient, keys: Keys, playbooks: Path, frozen_clock: FrozenClock
) -> None:
    old_start = _now(frozen_clock)  # the firing _opened_and_resolved sends, and then resolves
    sender, integration_id, first = _opened_and_resolved(client, keys, "alertmanager", frozen_clock)
    entries = len(_timeline(client, first))

    frozen_clock.advance(timedelta(minutes=2))
    sender.fire(old_start)  # Alertmanager re-delivers the old firing after its resolution
    row = _last(client, keys, integration_id)
    assert row["outcome"] == "ignored" and row["incident_id"] == first
    assert incident(client, first)["state"] == "resolved"
    assert len(_timeline(client, first)) == entries

    frozen_clock.advance(timedelta(minutes=3))
    sender.fire(_now(frozen_clock))  # a genuinely new firing of the group
    assert _last(client, keys, integration_id)["outcome"] == "reopened"
    assert incident(client, first)["state"] == "acknowledged"
    assert len(incidents(client)) == 1


def test_alert_firing_after_people_reopened_its_incident_attaches(
    client: TestClient, keys: Keys, playbooks: Path, frozen_clock: FrozenClock
) -> None:
    sender, integration_id, first = _opened_and_resolved(client, keys, "generic", frozen_clock)
    frozen_clock.advance(timedelta(hours=2))
    _by_people(client, first, "reopen")  # people keep investigating, long after the window
    frozen_clock.advance(timedelta(hours=1))
    sender.fire(_now(frozen_clock))

    assert _last(client, keys, integration_id)["outcome"] == "attached"
    sender.resolve(_now(frozen_clock))
    assert _last(client, keys, integration_id)["outcome"] == "resolved"
    assert incident(client, first)["state"] == "resolved" and len(incidents(client)) == 1


# ---- the window is a setting ----


@pytest.fixture
def windowed(engine: Engine, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], TestClient]]:
    """A client of an app whose settings come from the environment, as `riskops serve` builds them."""
    with ExitStack() as stack:

        def start(minutes: str) -> TestClient:
            monkeypatch.setenv("RISKOPS_FLAP_WINDOW_MINUTES", minutes)
            settings = Settings(scheduler_enabled=False, webhook_allowed_networks="127.0.0.0/8")
            app = create_app(settings, engine=engine)
            return stack.enter_context(TestClient(app, headers=keys.headers("write")))

        yield start


@pytest.mark.parametrize("minutes, after, outcome", [("60", 45, "reopened"), ("10", 15, "opened"), ("0", 0, "opened")])
def test_the_window_is_configurable(
    windowed: Callable[[str], TestClient],
    keys: Keys,
    playbooks: Path,
    frozen_clock: FrozenClock,
    minutes: str,
    after: int,
    outcome: str,
) -> None:
    client = windowed(minutes)
    sender, integration_id, first = _opened_and_resolved(client, keys, "pagerduty-events-v2", frozen_clock)
    frozen_clock.advance(timedelta(minutes=after))
    sender.fire(_now(frozen_clock))
    row = _last(client, keys, integration_id)
    assert row["outcome"] == outcome
    assert (row["incident_id"] == first) is (outcome == "reopened")
    if outcome == "reopened":
        assert f"within {minutes} minutes" in row["detail"]


# ---- racing re-firings ----


def test_concurrent_refirings_reopen_the_incident_once(database_url: str, keys: Keys, tmp_path: Path) -> None:
    """Many processes' worth of the same re-firing at once: one reopens, the rest attach, nothing new opens."""
    alert = {"dedup_key": "db/primary", "title": "Primary database down", "severity": "SEV1"}
    with running_service(database_url, tmp_path / "serve.log") as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            created = http.post(
                "/api/v1/integrations", json={"name": "monitoring", "kind": "generic"}, headers=keys.headers("admin")
            )
            assert created.status_code == 201, created.text
            integration = created.json()
            for action in ("trigger", "resolve"):
                sent = http.post(ENDPOINT, json={**alert, "action": action}, headers=bearer(integration["token"]))
                assert sent.status_code == 202, sent.text

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                return await asyncio.gather(
                    *(http.post(ENDPOINT, json=alert, headers=bearer(integration["token"])) for _ in range(30))
                )

        responses = asyncio.run(burst())
        assert [r.status_code for r in responses] == [202] * 30, [r.text for r in responses if r.status_code != 202]

        with httpx.Client(base_url=base, timeout=30, headers=keys.headers("read")) as http:
            listed = http.get("/api/v1/incidents").json()["items"]
            path = f"/api/v1/integrations/{integration['id']}/alerts"
            rows = http.get(path, params={"limit": 500}, headers=keys.headers("admin")).json()["items"]
            reopenings = http.get("/api/v1/events", params={"type": "incident.state_changed"}).json()["items"]
    assert [(i["id"], i["state"]) for i in listed] == [(listed[0]["id"], "acknowledged")]
    assert sorted(r["outcome"] for r in rows) == ["attached"] * 29 + ["opened", "reopened", "resolved"]
    assert {r["incident_id"] for r in rows} == {listed[0]["id"]}
    assert [e["data"]["action"] for e in reopenings].count("reopen") == 1
