"""Running an incident end to end over HTTP: activation, steps, roles, messages, timeline, closing."""

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, risk_body, row_counts, running_service
from tests.incidents.support import finish_obligations

SUMMARY = {
    "what_happened": "A misdirected export sent 1,200 customer records to a partner.",
    "impact": "Names and e-mail addresses of 1,200 customers; no payment data.",
    "root_cause": "The export job used a shared mailbox alias.",
}


def _risk(client: TestClient) -> dict[str, Any]:
    body = risk_body(title="Customer data disclosed", category="privacy", inherent={"likelihood": 3, "impact": 4})
    created: dict[str, Any] = client.post("/api/v1/risks", json=body).json()
    return created


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_personal_data_breach_from_activation_to_close(
    client: TestClient, playbooks: Path, frozen_clock: FrozenClock
) -> None:
    risk = _risk(client)
    listed = {p["id"]: p for p in client.get("/api/v1/playbooks").json()}
    assert "personal-data-breach" in listed and len(listed) >= 6

    activated = client.post("/api/v1/playbooks/personal-data-breach/activate", json={"risk_ids": [risk["reference"]]})
    assert activated.status_code == 201, activated.text
    incident = activated.json()
    assert activated.headers["location"] == f"/api/v1/incidents/{incident['id']}"
    assert incident["state"] == "declared" and incident["severity"] == "SEV2"
    assert incident["playbook"] == "personal-data-breach" and incident["playbook_version"] == 2
    assert incident["risk_ids"] == [risk["reference"]]
    regulator = next(m for m in incident["communications"] if m["audience"] == "regulator")
    assert _at(regulator["due_at"]) - _at(incident["declared_at"]) == timedelta(hours=72)
    assert incident["reference"] in regulator["body"]
    assert "incident-commander" in incident["unfilled_required_roles"]

    # The risk materialised: history says so, and it is due for reassessment now.
    materialised = client.get(f"/api/v1/risks/{risk['id']}").json()
    assert _at(materialised["materialised_at"]) == frozen_clock.now
    assert _at(materialised["next_review_at"]) == frozen_clock.now
    history = client.get(f"/api/v1/risks/{risk['id']}/history").json()["items"]
    assert history[-1]["action"] == "materialised" and incident["reference"] in history[-1]["note"]
    assert [i["id"] for i in client.get("/api/v1/incidents", params={"risk": risk["reference"]}).json()["items"]] == [
        incident["id"]
    ]

    ref = incident["reference"]
    for role in incident["roles"]:
        assert client.put(f"/api/v1/incidents/{ref}/roles/{role['key']}", json={"assignee": "dana"}).status_code == 200
    frozen_clock.advance(timedelta(minutes=5))
    assert client.post(f"/api/v1/incidents/{ref}/acknowledge", json={"note": "on it"}).json()["state"] == "acknowledged"
    steps = incident["steps"]
    worked = finish_obligations(client, incident, optional=True)
    assert {s["status"] for s in worked["steps"]} == {"done"}
    assert {m["status"] for m in worked["communications"]} == {"sent"}
    assert client.post(f"/api/v1/incidents/{ref}/notes", json={"text": "DPO agrees to notify"}).status_code == 201
    frozen_clock.advance(timedelta(hours=3))
    client.post(f"/api/v1/incidents/{ref}/mitigate", json={})
    client.post(f"/api/v1/incidents/{ref}/resolve", json={})
    follow_up = {"title": "Per-partner export aliases", "owner": "data platform", "control_for": risk["reference"]}
    closed = client.post(
        f"/api/v1/incidents/{ref}/close", json={"summary": {**SUMMARY, "follow_up_actions": [follow_up]}}
    )
    assert closed.status_code == 200, closed.text
    final = closed.json()
    assert final["state"] == "closed" and final["summary"]["root_cause"] == SUMMARY["root_cause"]
    assert final["measures"]["time_to_acknowledge_seconds"] == 300
    assert final["measures"]["rto_met"] is True
    assert final["unfilled_required_roles"] == []
    assert all(s["status"] == "done" for s in final["steps"])
    controls = client.get(f"/api/v1/risks/{risk['id']}").json()["controls"]
    assert [c["title"] for c in controls] == ["Per-partner export aliases"]

    kinds = [e["kind"] for e in client.get(f"/api/v1/incidents/{ref}/timeline").json()["items"]]
    assert kinds[:3] == ["declared", "risk.linked", "playbook.activated"]
    for kind in ("role.assigned", "step.completed", "message.sent", "note", "state.changed", "control.added"):
        assert kind in kinds
    assert kinds.count("step.completed") == len(steps)
    assert_problem(client.post(f"/api/v1/incidents/{ref}/notes", json={"text": "late"}), 409)


def test_step_cannot_start_or_complete_before_its_dependencies(
    client: TestClient, engine: Engine, playbooks: Path
) -> None:
    incident = client.post("/api/v1/playbooks/ransomware/activate", json={}).json()
    ref = incident["reference"]
    step = next(s for s in incident["steps"] if s["depends_on"])
    before = row_counts(engine)
    for action in ("start", "complete"):
        body = assert_problem(client.post(f"/api/v1/incidents/{ref}/steps/{step['key']}/{action}"), 409)
        assert body["waiting_for"] == sorted(step["depends_on"])
    assert row_counts(engine) == before
    assert client.get(f"/api/v1/incidents/{ref}").json()["steps"][incident["steps"].index(step)]["status"] == "pending"
    for dependency in step["depends_on"]:  # a skipped dependency no longer blocks
        skip = client.post(f"/api/v1/incidents/{ref}/steps/{dependency}/skip", json={"reason": "not applicable"})
        assert skip.status_code == 200 and skip.json()["skip_reason"] == "not applicable"
    assert client.post(f"/api/v1/incidents/{ref}/steps/{step['key']}/complete").json()["status"] == "done"
    assert_problem(client.post(f"/api/v1/incidents/{ref}/steps/{step['key']}/start"), 409)
    assert_problem(client.post(f"/api/v1/incidents/{ref}/steps/{step['key']}/skip", json={"reason": ""}), 422)
    assert_problem(client.post(f"/api/v1/incidents/{ref}/steps/no-such-step/complete"), 404)


def test_step_assign_start_and_overdue(client: TestClient, playbooks: Path, frozen_clock: FrozenClock) -> None:
    incident = client.post("/api/v1/playbooks/core-service-outage/activate", json={}).json()
    ref, first = incident["reference"], incident["steps"][0]
    assigned = client.put(f"/api/v1/incidents/{ref}/steps/{first['key']}/assignee", json={"assignee": "sam"})
    assert assigned.json()["assignee"] == "sam"
    assert client.post(f"/api/v1/incidents/{ref}/steps/{first['key']}/start").json()["status"] == "in-progress"
    frozen_clock.advance(timedelta(minutes=first_due(first, incident) + 1))
    again = client.get(f"/api/v1/incidents/{ref}").json()
    assert again["steps"][0]["overdue"] is True


def first_due(step: dict[str, Any], incident: dict[str, Any]) -> int:
    return int((_at(step["due_at"]) - _at(incident["declared_at"])).total_seconds() // 60)


def test_retried_activation_with_the_same_key_returns_the_first_incident(
    client: TestClient, engine: Engine, playbooks: Path
) -> None:
    headers = {"Idempotency-Key": "pager-7f3a"}
    first = client.post("/api/v1/playbooks/cloud-region-loss/activate", json={}, headers=headers)
    counts = row_counts(engine)
    second = client.post("/api/v1/playbooks/cloud-region-loss/activate", json={}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second.headers["idempotent-replayed"] == "true"
    assert row_counts(engine) == counts
    other = client.post("/api/v1/playbooks/cloud-region-loss/activate", json={"severity": "SEV3"}, headers=headers)
    assert_problem(other, 422, "header.idempotency-key")
    assert client.post("/api/v1/playbooks/cloud-region-loss/activate", json={}).json()["id"] != first.json()["id"]


def test_concurrent_retries_make_one_incident(database_url: str, keys: Keys, tmp_path: Path) -> None:
    """Ten identical activations at once against a real server: one incident, ten identical answers."""
    env = ("RISKOPS_PLAYBOOKS_DIR", str(Path(__file__).resolve().parents[2] / "playbooks"))
    with running_service(database_url, tmp_path / "serve.log", env) as base:

        async def burst() -> list[httpx.Response]:
            headers = {**keys.headers("write"), "Idempotency-Key": "retry-storm"}
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:
                calls = [c.post("/api/v1/playbooks/site-emergency/activate", json={}) for _ in range(10)]
                return list(await asyncio.gather(*calls))

        answers = asyncio.run(burst())
        listed = httpx.get(f"{base}/api/v1/incidents", headers=keys.headers("read")).json()["items"]
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["id"] for r in answers}) == 1
    assert len(listed) == 1


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/api/v1/playbooks/no-such-playbook/activate", {}, 404, None),
        ("/api/v1/playbooks/ransomware/activate", {"version": 9}, 404, None),
        ("/api/v1/playbooks/ransomware/activate", {"severity": "SEV9"}, 422, "body.severity"),
        ("/api/v1/playbooks/ransomware/activate", {"risk_ids": ["R-9999"]}, 422, "body.risk_ids.0"),
        ("/api/v1/playbooks/ransomware/activate", {"risk_ids": [9999]}, 422, "body.risk_ids.0"),
        ("/api/v1/playbooks/ransomware/activate", {"detected_at": "2026-07-01T08:00:00"}, 422, "body.detected_at"),
        ("/api/v1/playbooks/ransomware/activate", {"detected_at": "2026-07-01T09:01:00Z"}, 422, "body.detected_at"),
        (
            "/api/v1/incidents",
            {"title": "x", "severity": "SEV1", "detected_at": "2026-06-30T12:00"},
            422,
            "body.detected_at",
        ),
        (
            "/api/v1/incidents",
            {"title": "x", "severity": "SEV1", "detected_at": "2026-07-02T00:00Z"},
            422,
            "body.detected_at",
        ),
        ("/api/v1/incidents", {"title": "x", "severity": "SEV1", "risk_ids": [True]}, 422, None),
        ("/api/v1/playbooks/ransomware/activate", {"colour": "red"}, 422, "body.colour"),
        ("/api/v1/incidents", {"title": "No severity"}, 422, "body.severity"),
        ("/api/v1/incidents", {"severity": "SEV1"}, 422, "body.title"),
        ("/api/v1/incidents", {"title": "x", "severity": "SEV1", "playbook": "nope"}, 422, "body.playbook"),
    ],
)
def test_bad_declarations_write_nothing(
    client: TestClient,
    engine: Engine,
    playbooks: Path,
    frozen_clock: FrozenClock,
    path: str,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    before = row_counts(engine)
    assert_problem(client.post(path, json=body), status, field)
    assert row_counts(engine) == before


def test_retired_version_cannot_be_activated(client: TestClient, keys: Keys, playbooks: Path) -> None:
    admin = keys.headers("admin")
    assert_problem(client.post("/api/v1/playbooks/pr-crisis/versions/1/retire"), 403)
    assert client.post("/api/v1/playbooks/pr-crisis/versions/1/retire", headers=admin).json()["retired_at"]
    assert_problem(
        client.post("/api/v1/playbooks/pr-crisis/activate", json={"version": 1}), 409, "body.playbook_version"
    )
    assert_problem(client.post("/api/v1/playbooks/pr-crisis/activate", json={}), 409)
    assert "pr-crisis" not in {p["id"] for p in client.get("/api/v1/playbooks").json()}


def test_incident_without_playbook_and_exercise_does_not_materialise(client: TestClient) -> None:
    risk = _risk(client)
    plain = client.post("/api/v1/incidents", json={"title": "Office flood", "severity": "SEV3"})
    assert plain.status_code == 201 and plain.json()["steps"] == [] and plain.json()["breach_at"] is None
    drill = client.post(
        "/api/v1/incidents",
        json={"title": "Drill", "severity": "SEV4", "risk_ids": [str(risk["id"])], "exercise": True},
    )
    assert drill.json()["exercise"] is True and drill.json()["risk_ids"] == [risk["reference"]]
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["materialised_at"] is None


def test_reads_need_a_key_and_writes_a_write_key(client: TestClient, keys: Keys, playbooks: Path) -> None:
    assert_problem(client.get("/api/v1/incidents", headers={"Authorization": ""}), 401)
    assert_problem(client.post("/api/v1/playbooks/ransomware/activate", json={}, headers=keys.headers("read")), 403)
    assert client.get("/api/v1/playbooks/ransomware", headers=keys.headers("read")).status_code == 200
    assert_problem(client.get("/api/v1/incidents/INC-0999"), 404)


def test_linked_risks_are_taken_by_number_or_reference_and_shown_as_references(
    client: TestClient, engine: Engine
) -> None:
    first, second = _risk(client), _risk(client)
    body = {"title": "Export misdirected", "severity": "SEV2", "risk_ids": [second["id"], first["reference"]]}
    declared = client.post("/api/v1/incidents", json=body)
    assert declared.status_code == 201, declared.text
    expected = [first["reference"], second["reference"]]
    assert declared.json()["risk_ids"] == expected
    assert client.get(f"/api/v1/incidents/{declared.json()['id']}").json()["risk_ids"] == expected
    listed = client.get("/api/v1/incidents", params={"risk": second["reference"]}).json()["items"]
    assert [i["risk_ids"] for i in listed] == [expected]

    before = row_counts(engine)
    refused = assert_problem(client.post("/api/v1/incidents", json={**body, "risk_ids": [True]}), 422)
    assert all(e["field"].startswith("body.risk_ids.0") for e in refused["errors"]), refused["errors"]
    assert row_counts(engine) == before


def test_search_finds_title_or_description_in_any_case(client: TestClient) -> None:
    def declare(title: str, description: str = "") -> str:
        response = client.post(
            "/api/v1/incidents", json={"title": title, "severity": "SEV3", "description": description}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["reference"])

    outage = declare("Payments API down", "Card payments fail with 502")
    leak = declare("Customer export misdirected", "1,200 PAYMENT records went to a partner")
    disk = declare("Disk 100% full on db-2")

    def found(q: str) -> list[str]:
        response = client.get("/api/v1/incidents", params={"q": q})
        assert response.status_code == 200, response.text
        return [i["reference"] for i in response.json()["items"]]

    assert found("payment") == [leak, outage]  # newest first
    assert found("PAYMENTS API") == [outage]
    assert found("misdirected") == [leak]
    assert found("100%") == [disk] and found("%") == [disk]  # a wildcard is searched for, not matched with
    assert found("db_2") == []
    assert found("earthquake") == []
    assert found("") == [disk, leak, outage]  # an empty search box filters nothing
    assert_problem(client.get("/api/v1/incidents", params={"q": "x" * 201}), 422, "query.q")


def test_completing_a_step_keeps_its_note(client: TestClient, playbooks: Path) -> None:
    incident = client.post("/api/v1/playbooks/core-service-outage/activate", json={}).json()
    ref = incident["reference"]
    done = client.post(
        f"/api/v1/incidents/{ref}/steps/triage-and-declare/complete", json={"note": "SEV1 confirmed with the CTO"}
    )
    assert done.status_code == 200 and done.json()["status"] == "done", done.text
    assert client.post(f"/api/v1/incidents/{ref}/steps/freeze-changes/complete", json={}).status_code == 200
    assert_problem(client.post(f"/api/v1/incidents/{ref}/steps/check-dependencies/complete", json={"x": 1}), 422)

    entries = client.get(f"/api/v1/incidents/{ref}/timeline").json()["items"]
    completed = [e for e in entries if e["kind"] == "step.completed"]
    assert [e["data"]["note"] for e in completed] == ["SEV1 confirmed with the CTO", None]
    assert completed[0]["text"].endswith(": SEV1 confirmed with the CTO")
    events = client.get("/api/v1/events", params={"type": "step.completed", "subject": ref}).json()["items"]
    assert [e["data"]["note"] for e in events] == ["SEV1 confirmed with the CTO", None]


def test_a_follow_up_on_a_risk_closed_meanwhile_refuses_the_close_naming_the_action(
    client: TestClient, engine: Engine
) -> None:
    risk = client.post("/api/v1/risks", json=risk_body()).json()
    incident = client.post(
        "/api/v1/incidents", json={"title": "Flood", "severity": "SEV2", "risk_ids": [risk["reference"]]}
    ).json()
    ref = incident["reference"]
    for action in ("acknowledge", "mitigate", "resolve"):
        assert client.post(f"/api/v1/incidents/{ref}/{action}").status_code == 200
    closed_risk = client.post(f"/api/v1/risks/{risk['id']}/close", json={"reason": "site sold"})
    assert closed_risk.status_code == 200, closed_risk.text
    before = row_counts(engine)
    follow_up = {"title": "Flood barriers", "owner": "facilities", "control_for": risk["reference"]}
    body = assert_problem(
        client.post(f"/api/v1/incidents/{ref}/close", json={"summary": {**SUMMARY, "follow_up_actions": [follow_up]}}),
        409,
        "body.summary.follow_up_actions.0.control_for",
    )
    assert risk["reference"] in body["detail"]
    assert row_counts(engine) == before
    assert client.get(f"/api/v1/incidents/{ref}").json()["state"] == "resolved"


def test_repeated_state_and_severity_filters_mean_any_of_and_unknown_values_are_422(client: TestClient) -> None:
    made = {
        severity: client.post("/api/v1/incidents", json={"title": f"{severity} outage", "severity": severity}).json()
        for severity in ("SEV1", "SEV2", "SEV3")
    }
    ref = made["SEV2"]["reference"]
    assert client.post(f"/api/v1/incidents/{ref}/acknowledge").status_code == 200

    def listed(**params: object) -> list[str]:
        response = client.get("/api/v1/incidents", params=params)
        assert response.status_code == 200, response.text
        return sorted(i["severity"] for i in response.json()["items"])

    assert listed(severity=["SEV1", "SEV3"]) == ["SEV1", "SEV3"]
    assert listed(state=["declared", "acknowledged"]) == ["SEV1", "SEV2", "SEV3"]
    assert listed(state="acknowledged", severity=["SEV1", "SEV2"]) == ["SEV2"]
    assert_problem(client.get("/api/v1/incidents", params={"state": "open"}), 422, "query.state.0")
    assert_problem(client.get("/api/v1/incidents", params={"severity": ["SEV1", "SEV9"]}), 422, "query.severity.1")
