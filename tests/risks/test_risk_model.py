"""The richer risk: its statement and type, impacts per dimension with the criteria behind them, and a target
rating, over HTTP on both databases."""

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import Keys
from tests.helpers import assert_problem, risk_body, row_counts


def _create(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert response.status_code == 201, response.text
    risk: dict[str, Any] = response.json()
    return risk


def test_the_statement_reads_as_one_sentence_and_round_trips(client: TestClient) -> None:
    risk = _create(
        client, cause="Heavy rain upstream", event="the river floods the primary data centre.",
        consequence="a week without billing", source="Weather", objectives=["Billing", "Customer support"],
    )  # fmt: skip
    assert risk["type"] == "threat" and risk["treatment"] == "mitigate"
    assert risk["statement"] == (
        "Because of Heavy rain upstream, there is a risk that the river floods the primary data centre, "
        "which would lead to a week without billing."
    )
    assert (risk["source"], risk["objectives"]) == ("Weather", ["Billing", "Customer support"])
    assert client.get(f"/api/v1/risks/{risk['id']}").json() == risk
    plain = _create(client)
    assert (plain["statement"], plain["cause"], plain["objectives"]) == (None, "", [])
    edited = client.patch(f"/api/v1/risks/{plain['id']}", json={"event": "the site burns"}).json()
    assert edited["statement"] == "There is a risk that the site burns."
    trail = client.get(f"/api/v1/risks/{plain['id']}/history").json()["items"]
    assert trail[-1]["changes"]["event"] == {"old": "", "new": "the site burns"}


def test_an_opportunity_takes_the_opportunity_treatments(client: TestClient, engine: Engine) -> None:
    body = risk_body(type="opportunity", event="a competitor leaves the market")
    del body["treatment"]
    chance = client.post("/api/v1/risks", json=body).json()
    assert (chance["treatment"], chance["statement"]) == ("enhance", "There is an opportunity that a competitor "
                                                          "leaves the market.")  # fmt: skip
    before = row_counts(engine)
    assert_problem(client.post("/api/v1/risks", json=risk_body(type="opportunity", treatment="mitigate")), 422,
                   "body.treatment")  # fmt: skip
    assert_problem(client.post("/api/v1/risks", json=risk_body(treatment="exploit")), 422, "body.treatment")
    assert_problem(client.patch(f"/api/v1/risks/{chance['id']}", json={"treatment": "avoid"}), 422, "body.treatment")
    assert row_counts(engine) == before
    # Turning a threat into an opportunity moves its treatment to the opportunity's default.
    threat = _create(client)
    turned = client.patch(f"/api/v1/risks/{threat['id']}", json={"type": "opportunity"}).json()
    assert (turned["type"], turned["treatment"]) == ("opportunity", "enhance")


def test_impacts_per_dimension_give_the_highest_as_the_impact(client: TestClient, engine: Engine) -> None:
    risk = _create(
        client, inherent={"likelihood": 3, "impacts": {"reputation": 4, "financial": 2, "health-safety": 1}},
        residual={"likelihood": 2, "impacts": {"financial": 2}},
    )  # fmt: skip
    assert risk["inherent"] == {
        "likelihood": 3, "impact": 4, "score": 12, "level": "high",
        "impacts": {"financial": 2, "health-safety": 1, "reputation": 4},
    }  # fmt: skip
    assert risk["residual"]["impact"] == 2 and risk["level"] == "low"
    # A reassessment that leaves a rating out keeps it, impacts and all; the assessment records them.
    assessed = client.post(
        f"/api/v1/risks/{risk['id']}/assessments",
        json={"residual": {"likelihood": 3, "impacts": {"legal": 3}}, "rationale": "Fines"},
    )
    assert assessed.status_code == 201, assessed.text
    assert assessed.json()["inherent"]["impacts"] == risk["inherent"]["impacts"]
    assert assessed.json()["residual"] == {"likelihood": 3, "impact": 3, "score": 9, "level": "medium",
                                           "impacts": {"legal": 3}}  # fmt: skip

    before = row_counts(engine)
    unknown = risk_body(inherent={"likelihood": 2, "impacts": {"weather": 2}})
    assert_problem(client.post("/api/v1/risks", json=unknown), 422, "body.inherent.impacts.weather")
    off_scale = risk_body(inherent={"likelihood": 2, "impacts": {"financial": 9}})
    assert_problem(client.post("/api/v1/risks", json=off_scale), 422, "body.inherent.impacts.financial")
    contradicts = risk_body(inherent={"likelihood": 2, "impact": 2, "impacts": {"financial": 4}})
    assert_problem(client.post("/api/v1/risks", json=contradicts), 422, "body.inherent.impact")
    assert_problem(client.post("/api/v1/risks", json=risk_body(inherent={"likelihood": 2})), 422)
    assert row_counts(engine) == before


def test_the_matrices_carry_the_criteria_behind_the_numbers(client: TestClient, keys: Keys) -> None:
    spec = client.get("/api/v1/matrices/current").json()["spec"]
    assert [d["key"] for d in spec["impact_criteria"]] == [
        "financial", "operational", "legal", "reputation", "health-safety",
    ]  # fmt: skip
    assert all(len(d["levels"]) == len(spec["impact"]) and all(d["levels"]) for d in spec["impact_criteria"])
    assert all(point["frequency"] and point["description"] for point in spec["likelihood"])
    assert all(level["description"] for level in spec["levels"])
    short = {**spec, "impact_criteria": [{"key": "financial", "name": "Financial", "levels": ["only one"]}]}
    assert_problem(client.post("/api/v1/matrices", json=short, headers=keys.headers("admin")), 422)


def test_a_target_may_not_be_above_the_current_rating(client: TestClient, engine: Engine) -> None:
    risk = _create(client, inherent={"likelihood": 4, "impact": 4}, residual=None)  # 16: high, outside appetite
    assert (risk["outside_appetite"], risk["appetite_response"], risk["target"]) == (True, "none", None)
    before = row_counts(engine)
    worse = {"target": {"likelihood": 5, "impact": 4, "date": "2027-06-30"}}
    assert_problem(client.patch(f"/api/v1/risks/{risk['id']}", json=worse), 422, "body.target")
    assert_problem(client.post("/api/v1/risks", json=risk_body(target={"likelihood": 5, "impact": 5})), 422,
                   "body.target")  # fmt: skip
    assert row_counts(engine) == before

    planned = client.patch(f"/api/v1/risks/{risk['id']}", json={"target": {"likelihood": 2, "impact": 2,
                                                                           "date": "2027-06-30"}})  # fmt: skip
    assert planned.status_code == 200, planned.text
    assert planned.json()["target"] == {"likelihood": 2, "impact": 2, "score": 4, "level": "low", "date": "2027-06-30"}
    assert planned.json()["appetite_response"] == "target"
    listed = client.get("/api/v1/risks?outside_appetite=true").json()["items"]
    assert [(r["id"], r["appetite_response"]) for r in listed] == [(risk["id"], "target")]
    # A target still above the appetite answers nothing; cleared, the risk has no answer again.
    halfway = client.patch(f"/api/v1/risks/{risk['id']}", json={"target": {"likelihood": 3, "impact": 4}}).json()
    assert (halfway["target"]["level"], halfway["appetite_response"]) == ("high", "none")
    cleared = client.patch(f"/api/v1/risks/{risk['id']}", json={"target": None}).json()
    assert (cleared["target"], cleared["appetite_response"]) == (None, "none")
    # An opportunity's target may not be below its current rating.
    chance = _create(client, type="opportunity", treatment="exploit", residual=None)
    assert_problem(client.patch(f"/api/v1/risks/{chance['id']}", json={"target": {"likelihood": 1, "impact": 1}}),
                   422, "body.target")  # fmt: skip


def test_an_acceptance_in_force_answers_a_risk_outside_appetite(client: TestClient, keys: Keys) -> None:
    expiry = (date.today() + timedelta(days=90)).isoformat()
    body = risk_body(inherent={"likelihood": 4, "impact": 4}, residual=None, treatment="accept",
                     acceptance={"approver": "cfo", "expires_at": expiry})  # fmt: skip
    response = client.post("/api/v1/risks", json=body, headers=keys.headers("admin"))
    assert response.status_code == 201, response.text
    assert (response.json()["outside_appetite"], response.json()["appetite_response"]) == (True, "accepted")
