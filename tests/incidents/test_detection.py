"""When the organisation became aware: given at declaration, it moves the deadlines the law counts from awareness
(GDPR Art. 33's 72 hours), while the RTO and the MTPD stay counted from the declaration."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import FrozenClock
from tests.helpers import assert_problem, row_counts

# Counted from detection in the shipped personal-data-breach playbook; everything else from the declaration.
FROM_DETECTION = {
    "establish-roles-and-authority": 720,
    "notify-data-subjects": 2880,
    "notify-supervisory-authority": 4320,
    "controller-notification": 1440,
    "data-subject-notification": 2880,
    "supervisory-authority-notification": 4320,
}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.mark.parametrize("path", ["/api/v1/playbooks/personal-data-breach/activate", "/api/v1/incidents"])
def test_deadlines_counted_from_detection_move_and_the_others_do_not(
    client: TestClient, playbooks: Path, frozen_clock: FrozenClock, path: str
) -> None:
    declared_at = frozen_clock.now
    body: dict[str, Any] = {"detected_at": "2026-07-01T03:00:00+06:00"}  # 2026-06-30 21:00 UTC, 12 h earlier
    detected_at = declared_at - timedelta(hours=12)
    if path == "/api/v1/incidents":
        body["playbook"] = "personal-data-breach"
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    incident = response.json()
    assert _at(incident["detected_at"]) == detected_at and _at(incident["declared_at"]) == declared_at
    assert _at(incident["breach_at"]) == declared_at + timedelta(minutes=1440)
    assert _at(incident["mtpd_at"]) == declared_at + timedelta(minutes=4320) and incident["mtpd_minutes"] == 4320

    planned = {s["key"]: s["due_at"] for s in incident["steps"]} | {
        m["key"]: m["due_at"] for m in incident["communications"]
    }
    spec = client.get("/api/v1/playbooks/personal-data-breach").json()["playbook"]
    offsets = {item["id"]: item["due_minutes"] for item in spec["steps"] + spec["communications"]}
    for key, due_at in planned.items():
        start = detected_at if key in FROM_DETECTION else declared_at
        assert _at(due_at) == start + timedelta(minutes=offsets[key]), key
    regulator = next(m for m in incident["communications"] if m["key"] == "supervisory-authority-notification")
    assert _at(regulator["due_at"]) == declared_at + timedelta(hours=60)  # 72 hours from awareness
    assert "aware of the breach at 2026-06-30 21:00 UTC" in regulator["body"]

    declared = client.get("/api/v1/events", params={"type": "incident.declared"}).json()["items"]
    assert _at(declared[0]["data"]["detected_at"]) == detected_at
    entries = client.get(f"/api/v1/incidents/{incident['reference']}/timeline").json()["items"]
    assert "detected 2026-06-30 21:00 UTC" in entries[0]["text"]


def test_a_deadline_already_past_at_the_declaration_shows_overdue_at_once(
    client: TestClient, playbooks: Path, frozen_clock: FrozenClock
) -> None:
    detected = (frozen_clock.now - timedelta(days=4)).isoformat()
    incident = client.post("/api/v1/playbooks/personal-data-breach/activate", json={"detected_at": detected}).json()
    overdue = {m["key"] for m in incident["communications"] if m["overdue"]}
    assert overdue == {"controller-notification", "data-subject-notification", "supervisory-authority-notification"}
    assert {s["key"] for s in incident["steps"] if s["overdue"]} == set(FROM_DETECTION) & {
        s["key"] for s in incident["steps"]
    }


@pytest.mark.parametrize(
    ("detected_at", "reason"),
    [("2026-07-01T08:00:00", "timezone"), ("2026-07-01T09:00:01Z", "future"), ("yesterday", "datetime")],
)
def test_a_naive_future_or_unreadable_detection_time_is_422_and_writes_nothing(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock, detected_at: str, reason: str
) -> None:
    before = row_counts(engine)
    body = {"title": "Laptop stolen", "severity": "SEV3", "detected_at": detected_at}
    problem = assert_problem(client.post("/api/v1/incidents", json=body), 422, "body.detected_at")
    assert reason in problem["errors"][0]["message"]
    assert row_counts(engine) == before


def test_detection_now_is_accepted(client: TestClient, frozen_clock: FrozenClock) -> None:
    body = {"title": "Laptop stolen", "severity": "SEV3", "detected_at": frozen_clock.now.isoformat()}
    response = client.post("/api/v1/incidents", json=body)
    assert response.status_code == 201, response.text
    assert _at(response.json()["detected_at"]) == frozen_clock.now
