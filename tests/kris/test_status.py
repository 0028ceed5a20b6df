"""A KRI's status from its newest value, and what a change of it does: the event, the linked open risks' history
and review due now (their owner told), the risks' kri_status, escalation while red, and stale KRIs."""

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.kris.helpers import OWNER, add_kri, add_risk, mail_to

ONCALL = "oncall@example.org"


def _push(client: TestClient, clock: FrozenClock, value: float, minutes: int = 0, ref: str = "K-0001") -> Any:
    at = (clock.now + timedelta(minutes=minutes)).isoformat()
    answer = client.post(f"/api/v1/kris/{ref}/values", json={"values": [{"at": at, "value": value}]})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _events(client: TestClient, kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get("/api/v1/events", params={"type": kind}).json()["items"]
    return items


def test_crossings_emit_events_and_pull_linked_open_risks_into_review(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock, worker: Worker
) -> None:
    risk, closed = add_risk(client), add_risk(client, title="Old exposure")
    assert client.post(f"/api/v1/risks/{closed['id']}/close", json={"reason": "gone"}).status_code == 200
    add_kri(client, risks=[risk["reference"], closed["reference"]])
    review_before = client.get(f"/api/v1/risks/{risk['id']}").json()["next_review_at"]

    assert _push(client, frozen_clock, 20)["status"] == "green"
    assert _events(client, "kri.*") == []  # a first value in the green is no news
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["next_review_at"] == review_before

    frozen_clock.advance(timedelta(hours=1))
    assert _push(client, frozen_clock, 60)["status"] == "amber"
    read = client.get(f"/api/v1/risks/{risk['id']}").json()
    assert datetime.fromisoformat(read["next_review_at"]) == frozen_clock.now and read["kri_status"] == "amber"
    [amber] = _events(client, "kri.amber")
    assert amber["data"]["from"] == "green" and amber["data"]["to"] == "amber"
    assert [r["reference"] for r in amber["data"]["risks"]] == [risk["reference"]]  # the closed one is left be
    closed_history = client.get(f"/api/v1/risks/{closed['id']}/history").json()["items"]
    assert closed_history[-1]["action"] == "closed"

    frozen_clock.advance(timedelta(hours=1))
    _push(client, frozen_clock, 150)
    # A late value, older than the newest, is history: the status stays.
    assert _push(client, frozen_clock, 5, minutes=-30)["status"] == "red"
    frozen_clock.advance(timedelta(hours=1))
    _push(client, frozen_clock, 10)
    assert [e["type"] for e in _events(client, "kri.*")] == ["kri.amber", "kri.red", "kri.recovered"]
    history = client.get(f"/api/v1/risks/{risk['id']}/history").json()["items"]
    notes = [e["note"] for e in history if e["action"] == "reassessment_requested"]
    assert len(notes) == 3 and "turned amber" in notes[0] and "turned red" in notes[1] and "recovered" in notes[2]
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["kri_status"] == "green"

    worker.tick()  # the review the KRI made due: the owner is reminded
    assert f"[riskops] {risk['reference']} is due for review" in mail_to(engine, OWNER)


def test_a_risk_shows_the_worst_of_its_kris_and_lists_them(client: TestClient, frozen_clock: FrozenClock) -> None:
    risk = add_risk(client)
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["kri_status"] is None
    add_kri(client, name="Phishing click rate", risks=[risk["reference"]])
    add_kri(client, name="Patch latency", risks=[risk["reference"]])
    _push(client, frozen_clock, 10, ref="K-0001")
    _push(client, frozen_clock, 70, ref="K-0002")
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["kri_status"] == "amber"
    listed = client.get(f"/api/v1/risks/{risk['reference']}/kris").json()
    assert [(k["reference"], k["status"], k["last_value"]) for k in listed] == [
        ("K-0002", "amber", 70),
        ("K-0001", "green", 10),
    ]
    listing = client.get("/api/v1/risks", params={"limit": 5}).json()["items"]  # the fast read path says the same
    assert [r["kri_status"] for r in listing] == ["amber"]
    # Unlinking the amber one leaves the green one.
    assert client.patch("/api/v1/kris/K-0002", json={"risks": []}).status_code == 200
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["kri_status"] == "green"
    assert [k["status"] for k in client.get("/api/v1/kris", params={"status": "amber"}).json()["items"]] == ["amber"]


def test_new_thresholds_judge_the_newest_value_again(client: TestClient, frozen_clock: FrozenClock) -> None:
    risk = add_risk(client)
    add_kri(client, risks=[risk["reference"]])
    _push(client, frozen_clock, 70)
    changed = client.patch("/api/v1/kris/K-0001", json={"amber": 20, "red": 60}).json()
    assert changed["status"] == "red" and changed["threshold_version"] == 2
    assert [e["type"] for e in _events(client, "kri.*")] == ["kri.amber", "kri.red"]


def test_red_escalates_through_its_policy_until_it_leaves_red(
    client: TestClient, engine: Engine, keys: Keys, frozen_clock: FrozenClock, worker: Worker
) -> None:
    policy = {
        "name": "kri-oncall",
        "levels": [{"wait_minutes": 5, "emails": [ONCALL]}, {"wait_minutes": 10, "emails": [ONCALL]}],
    }
    assert (
        client.put("/api/v1/escalation-policies/kri-oncall", json=policy, headers=keys.headers("admin")).status_code
        == 200
    )
    add_kri(client, escalation_policy="kri-oncall")
    _push(client, frozen_clock, 500)
    frozen_clock.advance(timedelta(minutes=6))
    worker.tick()
    assert mail_to(engine, ONCALL) == ["[riskops] K-0001 is red: Failed logins per minute"]
    [escalated] = _events(client, "kri.escalated")
    assert escalated["data"]["level"] == 1 and escalated["data"]["policy"] == "kri-oncall"
    _push(client, frozen_clock, 10)  # back to green before the second level: it is cancelled
    frozen_clock.advance(timedelta(minutes=30))
    worker.tick()
    assert len(mail_to(engine, ONCALL)) == 1 and len(_events(client, "kri.escalated")) == 1


def test_a_kri_without_a_value_in_its_frequency_is_stale_once_per_episode(
    client: TestClient, frozen_clock: FrozenClock, worker: Worker
) -> None:
    add_kri(client, frequency="1h")  # stale after an hour and a grace of six minutes
    frozen_clock.advance(timedelta(minutes=65))
    worker.tick()
    assert _events(client, "kri.stale") == []
    frozen_clock.advance(timedelta(minutes=2))
    worker.tick()
    worker.tick()
    assert len(_events(client, "kri.stale")) == 1
    _push(client, frozen_clock, 10)  # a new value starts a new episode
    frozen_clock.advance(timedelta(minutes=67))
    worker.tick()
    frozen_clock.advance(timedelta(hours=5))
    worker.tick()
    stale = _events(client, "kri.stale")
    assert len(stale) == 2 and stale[1]["data"]["last_value"] == 10
