"""The incident state machine over HTTP: every allowed and every refused move, stamps, measures, closing."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops import bootstrap
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, row_counts

PLAYBOOK_DIR = Path(__file__).resolve().parents[2] / "playbooks"

STATES = ["declared", "acknowledged", "mitigated", "resolved", "closed"]
ACTIONS = ["acknowledge", "mitigate", "resolve", "close", "reopen"]

# The machine as specified, written out independently of the code under test.
ALLOWED: dict[str, dict[str, str]] = {
    "declared": {"acknowledge": "acknowledged"},
    "acknowledged": {"mitigate": "mitigated"},
    "mitigated": {"resolve": "resolved"},
    "resolved": {"close": "closed", "reopen": "acknowledged"},
    "closed": {},
}

# How to reach each state from a fresh declaration.
PATH_TO = {
    "declared": [],
    "acknowledged": ["acknowledge"],
    "mitigated": ["acknowledge", "mitigate"],
    "resolved": ["acknowledge", "mitigate", "resolve"],
    "closed": ["acknowledge", "mitigate", "resolve", "close"],
}

SUMMARY = {
    "what_happened": "The payments API returned errors for 40 minutes.",
    "impact": "About 3,000 card payments failed and were retried.",
    "root_cause": "A configuration change exhausted the database connection pool.",
    "follow_up_actions": [],
}

TABLE = [(state, action) for state in STATES for action in ACTIONS]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _declare(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/incidents", json={"title": "Payments API down", "severity": "SEV2", **overrides})
    assert response.status_code == 201, response.text
    declared: dict[str, Any] = response.json()
    return declared


def _body(action: str, summary: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"summary": summary or SUMMARY} if action == "close" else {}


def _act(client: TestClient, ref: str, action: str, **kwargs: Any) -> Any:
    return client.post(f"/api/v1/incidents/{ref}/{action}", **kwargs)


def _move(client: TestClient, ref: str, action: str, summary: dict[str, Any] | None = None) -> dict[str, Any]:
    response = _act(client, ref, action, json=_body(action, summary))
    assert response.status_code == 200, response.text
    moved: dict[str, Any] = response.json()
    return moved


def _drive_to(client: TestClient, state: str, **overrides: Any) -> dict[str, Any]:
    incident = _declare(client, **overrides)
    for action in PATH_TO[state]:
        incident = _move(client, incident["reference"], action)
    assert incident["state"] == state
    return incident


@pytest.fixture
def synced(engine: Engine) -> list[str]:
    return bootstrap.sync_playbooks(engine, PLAYBOOK_DIR)


# ---- the table ----


def test_the_table_covers_every_state_and_action() -> None:
    assert len(TABLE) == 25 and set(ALLOWED) == set(STATES)
    assert sum(len(moves) for moves in ALLOWED.values()) == 5


@pytest.mark.parametrize(("state", "action"), [c for c in TABLE if c[1] in ALLOWED[c[0]]], ids="-".join)
def test_allowed_move_lands_in_the_expected_state(client: TestClient, state: str, action: str) -> None:
    incident = _drive_to(client, state)
    assert sorted(incident["allowed_transitions"]) == sorted(ALLOWED[state])
    moved = _move(client, incident["reference"], action)
    assert moved["state"] == ALLOWED[state][action]
    assert moved["version"] == incident["version"] + 1
    assert client.get(f"/api/v1/incidents/{incident['reference']}").json()["state"] == ALLOWED[state][action]


@pytest.mark.parametrize(("state", "action"), [c for c in TABLE if c[1] not in ALLOWED[c[0]]], ids="-".join)
def test_refused_move_is_409_naming_the_allowed_actions_and_writes_nothing(
    client: TestClient, engine: Engine, state: str, action: str
) -> None:
    incident = _drive_to(client, state)
    before = row_counts(engine)
    response = _act(client, incident["reference"], action, json=_body(action))
    problem = assert_problem(response, 409)
    assert sorted(problem["allowed"]) == sorted(ALLOWED[state])
    assert row_counts(engine) == before
    after = client.get(f"/api/v1/incidents/{incident['reference']}").json()
    assert after["state"] == state and after["version"] == incident["version"]


def test_a_note_is_accepted_and_kept_on_the_timeline(client: TestClient) -> None:
    incident = _declare(client)
    response = _act(client, incident["reference"], "acknowledge", json={"note": "paged the on-call SRE"})
    assert response.status_code == 200, response.text
    entries = client.get(f"/api/v1/incidents/{incident['reference']}/timeline").json()["items"]
    assert entries[-1]["kind"] == "state.changed" and "paged the on-call SRE" in entries[-1]["text"]


@pytest.mark.parametrize("body", [None, {}, {"note": "from the bridge"}], ids=["no-body", "empty", "note"])
def test_a_move_takes_no_body_an_empty_one_or_a_note(client: TestClient, body: dict[str, Any] | None) -> None:
    ref = _declare(client)["reference"]
    for action in ("acknowledge", "mitigate", "resolve", "reopen"):
        response = _act(client, ref, action) if body is None else _act(client, ref, action, json=body)
        assert response.status_code == 200, response.text
    assert response.json()["state"] == "acknowledged"
    entries = client.get(f"/api/v1/incidents/{ref}/timeline").json()["items"]
    changes = [e["text"] for e in entries if e["kind"] == "state.changed"]
    assert len(changes) == 4
    assert all(text.endswith(": from the bridge") is (body is not None and "note" in body) for text in changes)


def test_a_move_with_an_unknown_field_is_422_and_changes_nothing(client: TestClient, engine: Engine) -> None:
    incident = _declare(client)
    before = row_counts(engine)
    assert_problem(_act(client, incident["reference"], "acknowledge", json={"notes": "typo"}), 422, "body.notes")
    assert row_counts(engine) == before


def test_a_read_only_key_cannot_move_an_incident(client: TestClient, engine: Engine, keys: Keys) -> None:
    incident = _declare(client)
    before = row_counts(engine)
    response = _act(client, incident["reference"], "acknowledge", json={}, headers=keys.headers("read"))
    assert_problem(response, 403)
    assert row_counts(engine) == before


# ---- timestamps and measures ----


def test_each_state_is_stamped_when_reached_and_measures_are_exact(
    client: TestClient, frozen_clock: FrozenClock
) -> None:
    declared_at = frozen_clock.now
    incident = _declare(client)
    ref = incident["reference"]
    assert _at(incident["declared_at"]) == declared_at
    assert _at(incident["detected_at"]) == declared_at  # detection defaults to the declaration
    assert incident["acknowledged_at"] is None and incident["measures"]["time_to_acknowledge_seconds"] is None

    acknowledged_at = frozen_clock.advance(timedelta(minutes=7))
    incident = _move(client, ref, "acknowledge")
    assert _at(incident["acknowledged_at"]) == acknowledged_at
    assert incident["acknowledged_by"] == "write-key" and incident["acknowledged_automatically"] is False
    assert incident["mitigated_at"] is None and incident["resolved_at"] is None
    assert incident["measures"]["time_to_acknowledge_seconds"] == 7 * 60

    mitigated_at = frozen_clock.advance(timedelta(minutes=30))
    incident = _move(client, ref, "mitigate")
    assert _at(incident["mitigated_at"]) == mitigated_at
    assert incident["measures"]["time_to_resolve_seconds"] is None

    resolved_at = frozen_clock.advance(timedelta(minutes=23, seconds=15))
    incident = _move(client, ref, "resolve")
    assert _at(incident["resolved_at"]) == resolved_at
    assert incident["measures"]["time_to_resolve_seconds"] == 60 * 60 + 15
    assert incident["measures"]["time_to_acknowledge_seconds"] == 7 * 60
    assert incident["measures"]["rto_met"] is None  # no playbook, no RTO
    assert incident["measures"]["breached"] is False and incident["measures"]["mtpd_exceeded"] is False
    assert incident["closed_at"] is None

    closed_at = frozen_clock.advance(timedelta(days=2))
    incident = _move(client, ref, "close")
    assert _at(incident["closed_at"]) == closed_at
    assert incident["summary"]["root_cause"] == SUMMARY["root_cause"]
    stamps = [_at(incident[f"{state}_at"]) for state in STATES]
    assert stamps == [declared_at, acknowledged_at, mitigated_at, resolved_at, closed_at]


def test_resolving_again_after_a_reopen_takes_the_latest_resolution(
    client: TestClient, frozen_clock: FrozenClock
) -> None:
    ref = _drive_to(client, "resolved")["reference"]
    first_ack = _at(client.get(f"/api/v1/incidents/{ref}").json()["acknowledged_at"])
    frozen_clock.advance(timedelta(hours=1))
    reopened = _move(client, ref, "reopen")
    assert reopened["state"] == "acknowledged"
    assert _at(reopened["acknowledged_at"]) == first_ack  # the first acknowledgement still counts
    _move(client, ref, "mitigate")
    resolved_again = frozen_clock.advance(timedelta(hours=2))
    incident = _move(client, ref, "resolve")
    assert _at(incident["resolved_at"]) == resolved_again
    assert incident["measures"]["time_to_resolve_seconds"] == 3 * 60 * 60


def test_a_reopened_incident_misses_its_rto_once_breach_at_passes_unresolved(
    client: TestClient, synced: list[str], frozen_clock: FrozenClock
) -> None:
    """The earlier resolution no longer counts: open again, the verdict is pending until breach_at, then false."""
    incident = client.post("/api/v1/playbooks/core-service-outage/activate", json={}).json()
    ref, breach_at = incident["reference"], _at(incident["breach_at"])
    _move(client, ref, "acknowledge")
    _move(client, ref, "mitigate")
    frozen_clock.advance(timedelta(minutes=30))
    resolved = _move(client, ref, "resolve")["measures"]
    assert resolved["rto_met"] is True and resolved["breached"] is False
    reopened = _move(client, ref, "reopen")
    assert reopened["state"] == "acknowledged"
    assert reopened["measures"]["rto_met"] is None and reopened["measures"]["breached"] is False

    frozen_clock.advance(breach_at - frozen_clock.now)  # at breach_at itself: still in time
    assert client.get(f"/api/v1/incidents/{ref}").json()["measures"]["rto_met"] is None
    frozen_clock.advance(timedelta(seconds=1))
    still_open = client.get(f"/api/v1/incidents/{ref}").json()
    assert still_open["state"] == "acknowledged"
    assert still_open["measures"]["rto_met"] is False and still_open["measures"]["breached"] is True
    assert still_open["measures"]["mtpd_exceeded"] is False  # mtpd_at is 8 hours out

    _move(client, ref, "mitigate")
    late = _move(client, ref, "resolve")["measures"]
    assert late["rto_met"] is False and late["breached"] is True


@pytest.mark.parametrize(("minutes", "met"), [(119, True), (120, True), (121, False), (480, False), (481, False)])
def test_rto_met_depends_on_resolving_before_the_breach_time(
    client: TestClient, synced: list[str], frozen_clock: FrozenClock, minutes: int, met: bool
) -> None:
    response = client.post("/api/v1/playbooks/core-service-outage/activate", json={})
    assert response.status_code == 201, response.text
    incident = response.json()
    assert incident["rto_minutes"] == 120
    assert _at(incident["breach_at"]) == frozen_clock.now + timedelta(minutes=120)
    assert incident["measures"]["rto_met"] is None
    ref = incident["reference"]
    _move(client, ref, "acknowledge")
    _move(client, ref, "mitigate")
    frozen_clock.advance(timedelta(minutes=minutes))
    resolved = _move(client, ref, "resolve")
    assert resolved["measures"]["rto_met"] is met and resolved["measures"]["breached"] is not met
    assert resolved["measures"]["mtpd_exceeded"] is (minutes > 480)
    assert resolved["measures"]["time_to_resolve_seconds"] == minutes * 60


# ---- closing ----


def test_closing_without_a_summary_is_422_and_changes_nothing(client: TestClient, engine: Engine) -> None:
    incident = _drive_to(client, "resolved")
    before = row_counts(engine)
    for body in ({}, {"summary": {"what_happened": "x", "impact": "y"}}):
        response = _act(client, incident["reference"], "close", json=body)
        assert_problem(response, 422, "body.summary" if not body else None)
    assert row_counts(engine) == before
    after = client.get(f"/api/v1/incidents/{incident['reference']}").json()
    assert after["state"] == "resolved" and after["closed_at"] is None and after["summary"] is None
    assert after["version"] == incident["version"]


def test_an_exercise_cannot_close_without_saying_whether_objectives_were_met(
    client: TestClient, engine: Engine
) -> None:
    exercise = _drive_to(client, "resolved", exercise=True)
    assert exercise["exercise"] is True
    before = row_counts(engine)
    response = _act(client, exercise["reference"], "close", json={"summary": SUMMARY})
    assert_problem(response, 422, "body.summary.objectives_met")
    assert row_counts(engine) == before
    after = client.get(f"/api/v1/incidents/{exercise['reference']}").json()
    assert after["state"] == "resolved" and after["summary"] is None and after["objectives_met"] is None


@pytest.mark.parametrize("objectives_met", [True, False])
def test_an_exercise_closes_with_its_objectives_recorded(client: TestClient, objectives_met: bool) -> None:
    exercise = _drive_to(client, "resolved", exercise=True)
    closed = _move(client, exercise["reference"], "close", {**SUMMARY, "objectives_met": objectives_met})
    assert closed["state"] == "closed"
    assert closed["objectives_met"] is objectives_met
    assert closed["summary"]["objectives_met"] is objectives_met
    stored = client.get(f"/api/v1/incidents/{exercise['reference']}").json()
    assert stored["objectives_met"] is objectives_met and stored["summary"]["objectives_met"] is objectives_met


def test_a_real_incident_keeps_no_objectives_verdict(client: TestClient) -> None:
    incident = _drive_to(client, "resolved")
    closed = _move(client, incident["reference"], "close", {**SUMMARY, "objectives_met": True})
    assert closed["state"] == "closed" and closed["objectives_met"] is None


# ---- exercises are kept apart ----


def test_exercises_are_listed_and_counted_apart(client: TestClient) -> None:
    real = _declare(client)
    drill = _declare(client, title="Tabletop: payments outage", severity="SEV1", exercise=True)
    _move(client, drill["reference"], "acknowledge")

    listed = client.get("/api/v1/incidents").json()["items"]
    assert [i["reference"] for i in listed] == [real["reference"]]
    drills = client.get("/api/v1/incidents", params={"exercise": "true"}).json()["items"]
    assert [i["reference"] for i in drills] == [drill["reference"]] and drills[0]["exercise"] is True

    counts = client.get("/api/v1/incidents/counts").json()
    assert counts == {"exercise": False, "by_state": {"declared": 1}, "by_severity": {"SEV2": 1}}
    drill_counts = client.get("/api/v1/incidents/counts", params={"exercise": "true"}).json()
    assert drill_counts == {"exercise": True, "by_state": {"acknowledged": 1}, "by_severity": {"SEV1": 1}}


# ---- the timeline ----


def test_timeline_records_every_state_change_in_order_with_its_actor(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    ref = _declare(client)["reference"]
    moves: list[tuple[str, str]] = [
        ("acknowledge", "write"),
        ("mitigate", "write"),
        ("resolve", "admin"),
        ("reopen", "write"),
        ("mitigate", "write"),
        ("resolve", "write"),
        ("close", "admin"),
    ]
    times = []
    for action, role in moves:
        times.append(frozen_clock.advance(timedelta(minutes=5)))
        response = _act(client, ref, action, json=_body(action), headers=keys.headers(role))
        assert response.status_code == 200, response.text

    response = client.get(f"/api/v1/incidents/{ref}/timeline")
    assert response.status_code == 200, response.text
    changes = [e for e in response.json()["items"] if e["kind"] == "state.changed"]
    assert [(e["data"]["from"], e["data"]["to"]) for e in changes] == [
        ("declared", "acknowledged"),
        ("acknowledged", "mitigated"),
        ("mitigated", "resolved"),
        ("resolved", "acknowledged"),
        ("acknowledged", "mitigated"),
        ("mitigated", "resolved"),
        ("resolved", "closed"),
    ]
    assert [e["actor"] for e in changes] == [f"{role}-key" for _, role in moves]
    assert [_at(e["at"]) for e in changes] == times
    assert [e["id"] for e in changes] == sorted(e["id"] for e in changes)


def test_a_refused_move_leaves_no_trace_on_the_timeline(client: TestClient) -> None:
    ref = _declare(client)["reference"]
    before = client.get(f"/api/v1/incidents/{ref}/timeline").json()["items"]
    assert_problem(_act(client, ref, "resolve", json={}), 409)
    assert client.get(f"/api/v1/incidents/{ref}/timeline").json()["items"] == before
