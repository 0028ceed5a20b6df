"""Controls on a risk: library controls applied (or made from a title and an owner), changed and taken off over the
risk's endpoints, each in the risk's history and the control's."""

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.clock import now as utcnow
from riskops.risks import history
from tests.helpers import assert_problem, risk_body, row_counts


def _risk(client: TestClient, **overrides: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _apply(client: TestClient, risk: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(f"/api/v1/risks/{risk['reference']}/controls", json=body)
    assert answer.status_code == 201, answer.text
    applied: dict[str, Any] = answer.json()
    return applied


def test_a_title_and_owner_make_a_library_control_that_other_risks_share(client: TestClient) -> None:
    flood, fire = _risk(client, title="Flood"), _risk(client, title="Fire")
    made = _apply(client, flood, {"title": "Site inspection", "owner": "facilities", "due_date": "2027-03-31"})
    assert made["control_reference"] == "C-0001" and made["owner"] == "facilities"
    assert (made["type"], made["effectiveness"], made["status"]) == ("preventive", "untested", "planned")
    shared = _apply(client, fire, {"control_id": made["control_id"], "status": "implemented"})
    assert shared["control_id"] == made["control_id"] and shared["id"] != made["id"]
    assert shared["status"] == "implemented" and shared["due_date"] is None  # per risk
    library = client.get("/api/v1/controls/C-0001").json()
    assert [(r["reference"], r["implementation"]) for r in library["risks"]] == [
        (flood["reference"], "planned"), (fire["reference"], "implemented"),
    ]  # fmt: skip
    assert [e["action"] for e in client.get("/api/v1/controls/C-0001/history").json()["items"]] == [
        "created", "applied", "applied",
    ]  # fmt: skip
    [entry] = [e for e in client.get(f"/api/v1/risks/{fire['id']}/history").json()["items"] if e["action"] != "created"]
    assert entry["action"] == "control.added"
    assert entry["changes"][f"controls.{shared['id']}"]["new"] == {
        "control_id": 1, "title": "Site inspection", "owner": "facilities", "status": "implemented", "due_date": None,
    }  # fmt: skip


def test_applying_wrongly_is_refused_and_writes_nothing(client: TestClient, engine: Engine) -> None:
    risk = _risk(client)
    _apply(client, risk, {"title": "Site inspection", "owner": "facilities"})
    before = row_counts(engine)
    twice = assert_problem(client.post(f"/api/v1/risks/{risk['id']}/controls", json={"control_id": 1}), 409)
    assert twice["errors"][0]["field"] == "body.control_id" and "already applied" in twice["detail"]
    for body, status, field in [
        ({"control_id": 99}, 422, "body.control_id"),
        ({"control_id": 2**40}, 422, "body.control_id"),
        ({"control_id": 0}, 422, "body.control_id"),
        ({"control_id": 1, "title": "Also"}, 422, "body.control_id"),
        ({"title": "No owner"}, 422, "body.owner"),
        ({}, 422, "body.title"),
        ({"control_id": "1"}, 422, "body.control_id"),
    ]:
        assert_problem(client.post(f"/api/v1/risks/{risk['id']}/controls", json=body), status, field)
    assert row_counts(engine) == before


def test_a_title_changed_on_a_risk_changes_the_library_control(client: TestClient) -> None:
    flood, fire = _risk(client, title="Flood"), _risk(client, title="Fire")
    made = _apply(client, flood, {"title": "Site inspection", "owner": "facilities"})
    shared = _apply(client, fire, {"control_id": 1})
    renamed = client.patch(f"/api/v1/risks/{flood['id']}/controls/{made['id']}", json={"title": "Site walk-through"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Site walk-through"
    assert client.get(f"/api/v1/risks/{fire['id']}").json()["controls"][0]["title"] == "Site walk-through"
    assert client.get("/api/v1/controls/C-0001").json()["version"] == 2
    entry = client.get("/api/v1/controls/C-0001/history").json()["items"][-1]
    assert entry["action"] == "updated" and entry["note"] == f"Through {flood['reference']}"
    assert entry["changes"] == {"title": {"old": "Site inspection", "new": "Site walk-through"}}
    status_only = client.patch(f"/api/v1/risks/{fire['id']}/controls/{shared['id']}", json={"status": "implemented"})
    assert status_only.json()["status"] == "implemented"
    assert client.get(f"/api/v1/risks/{flood['id']}").json()["controls"][0]["status"] == "planned"
    assert client.get("/api/v1/controls/C-0001").json()["version"] == 2  # the application's own change


def test_a_control_taken_off_a_risk_stays_in_the_library_and_the_history(client: TestClient, engine: Engine) -> None:
    risk = _risk(client)
    made = _apply(client, risk, {"title": "Site inspection", "owner": "facilities"})
    kept = _apply(client, risk, {"title": "Pumps", "owner": "facilities"})
    version = client.get(f"/api/v1/risks/{risk['id']}").json()["version"]
    assert client.delete(f"/api/v1/risks/{risk['id']}/controls/{made['id']}").status_code == 204
    now = client.get(f"/api/v1/risks/{risk['id']}").json()
    assert [c["id"] for c in now["controls"]] == [kept["id"]] and now["version"] == version + 1
    assert client.get("/api/v1/controls/C-0001").json()["risks"] == []
    entry = client.get(f"/api/v1/risks/{risk['id']}/history").json()["items"][-1]
    assert entry["action"] == "control.removed" and entry["changes"][f"controls.{made['id']}"]["new"] is None
    assert client.get("/api/v1/controls/C-0001/history").json()["items"][-1]["action"] == "unapplied"
    with Session(engine) as session:  # the register as it stood, replayed from the history, has it no more
        assert set(history.states_as_of(session, utcnow())[risk["id"]].controls) == {str(kept["id"])}
    assert_problem(client.delete(f"/api/v1/risks/{risk['id']}/controls/{made['id']}"), 404)
    other = _risk(client, title="Other")
    assert_problem(client.delete(f"/api/v1/risks/{other['id']}/controls/{kept['id']}"), 404)
    # It can be applied again, as a new application.
    again = _apply(client, risk, {"control_id": 1})
    assert again["id"] != made["id"] and again["control_reference"] == "C-0001"


def test_a_closed_risk_keeps_its_controls(client: TestClient, engine: Engine) -> None:
    risk = _risk(client)
    made = _apply(client, risk, {"title": "Site inspection", "owner": "facilities"})
    client.post(f"/api/v1/risks/{risk['id']}/close", json={"reason": "site sold"})
    before = row_counts(engine)
    body = assert_problem(client.delete(f"/api/v1/risks/{risk['id']}/controls/{made['id']}"), 409)
    assert body["allowed"] == ["reopen"]
    assert_problem(client.post(f"/api/v1/risks/{risk['id']}/controls", json={"control_id": 1}), 409)
    assert row_counts(engine) == before
