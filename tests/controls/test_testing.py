"""Control testing over HTTP: each test on record, the latest one the control's effectiveness, and a control found
ineffective making every open risk it is applied to due for reassessment, with what it exposes in the library."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from riskops.events.models import Event
from tests.conftest import FrozenClock
from tests.controls.test_library import TODAY, add_control, add_risk
from tests.helpers import assert_problem, row_counts


def a_test(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tested_on": TODAY.isoformat(),
        "tester": "internal audit",
        "result": "ineffective",
        "evidence_url": "https://evidence.example.org/audits/2026-07/access-review.pdf",
        "notes": "Three leavers still had access.",
    }
    body.update(overrides)
    return body


def events(engine: Engine, event_type: str) -> list[Event]:
    with Session(engine) as session:
        return list(session.exec(select(Event).where(Event.type == event_type).order_by(col(Event.id))))


def test_an_ineffective_control_flags_its_open_risks_and_shows_what_it_exposes(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock
) -> None:
    add_control(client)  # C-0001, every 90 days
    exposed = [add_risk(client, title="Leavers keep access"), add_risk(client, title="Privilege creep")]
    closed, elsewhere = add_risk(client, title="Old system"), add_risk(client, title="Not linked")
    for risk in (*exposed, closed):
        applied = client.post(f"/api/v1/risks/{risk['reference']}/controls", json={"control_id": 1})
        assert applied.status_code == 201, applied.text
    client.post(f"/api/v1/risks/{closed['reference']}/close", json={"reason": "decommissioned"})
    frozen_clock.advance(timedelta(hours=1))

    def review(risk: dict[str, Any]) -> tuple[int, str]:
        now = client.get(f"/api/v1/risks/{risk['id']}").json()
        return now["version"], now["next_review_at"]

    reviews_before = [review(closed), review(elsewhere)]

    recorded = client.post("/api/v1/controls/C-0001/tests", json=a_test())
    assert recorded.status_code == 201, recorded.text
    assert recorded.headers["etag"] == '"2"'
    assert recorded.json()["recorded_by"] == "write-key" and recorded.json()["control_reference"] == "C-0001"

    control = client.get("/api/v1/controls/C-0001").json()
    assert control["effectiveness"] == "ineffective" and control["last_tested_on"] == TODAY.isoformat()
    assert control["next_test_due"] == (TODAY + timedelta(days=90)).isoformat()
    # Each open risk it is applied to is due for review now, with a history entry naming the control.
    for risk in exposed:
        now = client.get(f"/api/v1/risks/{risk['id']}").json()
        assert datetime.fromisoformat(now["next_review_at"]) == frozen_clock.now
        assert now["controls"][0]["effectiveness"] == "ineffective"
        entry = client.get(f"/api/v1/risks/{risk['id']}/history").json()["items"][-1]
        assert entry["action"] == "reassessment_requested" and "C-0001" in entry["note"]
    assert [review(closed), review(elsewhere)] == reviews_before  # the closed one, and one without the control
    # The events: the test, the finding naming the exposed risks, and a reassessment request per exposed risk.
    [tested] = events(engine, "control.tested")
    assert tested.subject_type == "control" and tested.subject_id == "C-0001" and tested.data["result"] == "ineffective"
    [found] = events(engine, "control.found_ineffective")
    assert [r["reference"] for r in found.data["risks"]] == [r["reference"] for r in exposed]
    assert found.data["risks"][0]["level"] == exposed[0]["level"]
    requests = events(engine, "risk.reassessment_requested")
    assert [e.subject_id for e in requests] == [r["reference"] for r in exposed]
    assert requests[0].data["control"]["reference"] == "C-0001"
    # Which controls failed testing, and what does that expose: the list, and the control itself.
    [failed] = client.get("/api/v1/controls?effectiveness=ineffective").json()["items"]
    assert [(r["reference"], r["title"], r["status"]) for r in failed["risks"]] == [
        (exposed[0]["reference"], "Leavers keep access", "open"), (exposed[1]["reference"], "Privilege creep", "open"),
        (closed["reference"], "Old system", "closed"),
    ]  # fmt: skip
    assert failed["risks"][0]["level"] == exposed[0]["level"] and failed["risks"][0]["implementation"] == "planned"
    # The control's history has the test, with its evidence.
    entry = client.get("/api/v1/controls/C-0001/history").json()["items"][-1]
    assert entry["action"] == "tested" and entry["changes"]["effectiveness"] == {
        "old": "untested",
        "new": "ineffective",
    }
    assert "evidence.example.org" in entry["note"]


def test_an_effective_test_flags_nothing(client: TestClient, engine: Engine, frozen_clock: FrozenClock) -> None:
    add_control(client)
    risk = add_risk(client)
    client.post(f"/api/v1/risks/{risk['reference']}/controls", json={"control_id": 1})
    version = client.get(f"/api/v1/risks/{risk['id']}").json()["version"]
    assert client.post("/api/v1/controls/C-0001/tests", json=a_test(result="effective")).status_code == 201
    assert client.get("/api/v1/controls/C-0001").json()["effectiveness"] == "effective"
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["version"] == version
    assert len(events(engine, "control.tested")) == 1
    assert events(engine, "control.found_ineffective") == events(engine, "risk.reassessment_requested") == []


def test_a_test_filed_after_a_newer_one_is_kept_and_changes_nothing(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock
) -> None:
    add_control(client)
    risk = add_risk(client)
    client.post(f"/api/v1/risks/{risk['reference']}/controls", json={"control_id": 1})
    client.post("/api/v1/controls/C-0001/tests", json=a_test(result="partially-effective"))
    older = a_test(tested_on=(TODAY - timedelta(days=40)).isoformat(), result="ineffective")
    assert client.post("/api/v1/controls/C-0001/tests", json=older).status_code == 201
    control = client.get("/api/v1/controls/C-0001").json()
    assert control["effectiveness"] == "partially-effective" and control["version"] == 2
    assert [e.data["latest"] for e in events(engine, "control.tested")] == [True, False]
    assert events(engine, "control.found_ineffective") == []
    listed = client.get("/api/v1/controls/C-0001/tests?limit=1").json()
    assert [t["result"] for t in listed["items"]] == ["partially-effective"]  # the latest by date first
    rest = client.get(f"/api/v1/controls/C-0001/tests?limit=1&cursor={listed['next_cursor']}").json()
    assert [t["tested_on"] for t in rest["items"]] == [older["tested_on"]] and rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"tested_on": (TODAY + timedelta(days=1)).isoformat()}, "body.tested_on"),
        ({"result": "partially"}, "body.result"),
        ({"evidence_url": "ftp://files.example.org/x"}, "body.evidence_url"),
        ({"evidence_url": "https:///no-host"}, "body.evidence_url"),
        ({"evidence_url": "https://example.org/" + "x" * 2000}, "body.evidence_url"),
        ({"evidence_url": None}, "body.evidence_url"),
        ({"tester": ""}, "body.tester"),
        ({"notes": "x" * 5001}, "body.notes"),
    ],
)
def test_a_bad_test_is_refused_naming_the_field(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock, overrides: dict[str, Any], where: str
) -> None:
    add_control(client)
    before = row_counts(engine)
    assert_problem(client.post("/api/v1/controls/C-0001/tests", json=a_test(**overrides)), 422, where)
    assert row_counts(engine) == before


def test_a_missing_test_field_and_control_are_problems(client: TestClient) -> None:
    add_control(client)
    body = a_test()
    del body["evidence_url"]
    assert_problem(client.post("/api/v1/controls/C-0001/tests", json=body), 422, "body.evidence_url")
    assert_problem(client.post("/api/v1/controls/C-0009/tests", json=a_test()), 404)
    assert_problem(client.get("/api/v1/controls/C-0009/tests"), 404)
    assert_problem(client.get("/api/v1/controls/C-0001/tests?cursor=WyJ4IiwxXQ"), 422, "query.cursor")  # ["x",1]


def test_a_test_on_record_cannot_be_changed(client: TestClient, engine: Engine, frozen_clock: FrozenClock) -> None:
    add_control(client)
    client.post("/api/v1/controls/C-0001/tests", json=a_test())
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE control_test SET result = 'effective'"))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM control_test"))
