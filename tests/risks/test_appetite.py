"""Appetite and tolerance per category, over HTTP: set by admins with history, and every risk placed against
them (outside_appetite, beyond_tolerance), filterable."""

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import Keys
from tests.helpers import assert_problem, risk_body, row_counts


def _risk(client: TestClient, category: str, likelihood: int, impact: int) -> dict[str, Any]:
    body = risk_body(category=category, inherent={"likelihood": likelihood, "impact": impact}, residual=None)
    response = client.post("/api/v1/risks", json=body)
    assert response.status_code == 201, response.text
    risk: dict[str, Any] = response.json()
    return risk


def _references(client: TestClient, query: str) -> set[str]:
    response = client.get(f"/api/v1/risks?{query}")
    assert response.status_code == 200, response.text
    return {risk["reference"] for risk in response.json()["items"]}


def test_the_matrix_appetite_applies_until_a_category_has_its_own(client: TestClient, keys: Keys) -> None:
    high = _risk(client, "Cyber", 3, 4)  # 12: high, above the default matrix's appetite (medium)
    medium = _risk(client, "cyber ", 2, 3)  # 6: medium
    other = _risk(client, "Finance", 3, 4)
    assert (high["outside_appetite"], medium["outside_appetite"]) == (True, False)
    assert not high["beyond_tolerance"]
    assert _references(client, "outside_appetite=true") == {high["reference"], other["reference"]}

    admin = keys.headers("admin")
    body = {"appetite": "low", "tolerance": "medium", "rationale": "Board decision 2026-11"}
    response = client.put("/api/v1/appetite/CYBER", json=body, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["appetite"] == "low" and response.json()["set_by"] == "admin-key"

    placed = {r["reference"]: r for r in client.get("/api/v1/risks?category=cyber").json()["items"]}
    assert placed[high["reference"]]["outside_appetite"] and placed[high["reference"]]["beyond_tolerance"]
    assert placed[medium["reference"]]["outside_appetite"] and not placed[medium["reference"]]["beyond_tolerance"]
    assert _references(client, "beyond_tolerance=true") == {high["reference"]}
    assert _references(client, "outside_appetite=false") == set()
    # Each risk whose standing moved says so in its history, and the admin escalation is announced.
    history = client.get(f"/api/v1/risks/{medium['reference']}/history").json()["items"]
    assert history[-1]["action"] == "appetite_changed"
    assert history[-1]["changes"]["outside_appetite"] == {"old": False, "new": True}
    events = client.get("/api/v1/events?type=risk.beyond_tolerance", headers=admin).json()["items"]
    assert [e["subject_id"] for e in events] == [high["reference"]]

    # A new risk of the category is placed on creation; a reassessment places it again.
    fresh = _risk(client, "Cyber", 1, 1)
    assert not fresh["outside_appetite"]
    reassessed = client.post(
        f"/api/v1/risks/{fresh['reference']}/assessments",
        json={"inherent": {"likelihood": 2, "impact": 3}, "rationale": "New exploit published"},
    )
    assert reassessed.status_code == 201, reassessed.text
    assert client.get(f"/api/v1/risks/{fresh['reference']}").json()["outside_appetite"] is True

    # Cleared, the category takes the matrix's appetite again.
    assert client.delete("/api/v1/appetite/cyber?rationale=Back+to+default", headers=admin).status_code == 204
    assert _references(client, "category=cyber&outside_appetite=true") == {high["reference"]}
    trail = client.get("/api/v1/appetite/cyber/history").json()["items"]
    assert [(e["action"], e["actor"]) for e in trail] == [("set", "admin-key"), ("cleared", "admin-key")]
    assert trail[0]["changes"]["appetite"] == {"old": None, "new": "low"}


def test_the_list_shows_each_category_and_the_default(client: TestClient, keys: Keys) -> None:
    client.put("/api/v1/appetite/Cyber", json={"appetite": "low"}, headers=keys.headers("admin"))
    listed = client.get("/api/v1/appetite").json()
    assert listed["default"]["appetite"] == "medium"
    assert [(c["category"], c["appetite"], c["tolerance"]) for c in listed["categories"]] == [("Cyber", "low", None)]
    assert client.get("/api/v1/appetite/cyber").json()["category"] == "Cyber"
    assert_problem(client.get("/api/v1/appetite/finance"), 404)


def test_only_admins_set_appetite_and_bad_levels_name_the_field(client: TestClient, keys: Keys, engine: Engine) -> None:
    before = row_counts(engine)
    assert_problem(client.put("/api/v1/appetite/cyber", json={"appetite": "low"}), 403)
    admin = keys.headers("admin")
    assert_problem(client.put("/api/v1/appetite/cyber", json={"appetite": "tiny"}, headers=admin), 422, "body.appetite")
    below = {"appetite": "high", "tolerance": "medium"}
    assert_problem(client.put("/api/v1/appetite/cyber", json=below, headers=admin), 422, "body.tolerance")
    assert_problem(client.put("/api/v1/appetite/cyber", json={"appetite": "low", "x": 1}, headers=admin), 422)
    assert_problem(client.delete("/api/v1/appetite/cyber", headers=admin), 404)
    assert row_counts(engine) == before
