"""What a treatment action is worth, over HTTP on both databases: its loss effect set and refused naming the field,
the ALE before and after on common random numbers, and the return on control against its cost."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import Keys
from tests.helpers import assert_problem, row_counts
from tests.quant.helpers import estimate_body, quantified_risk
from tests.treatments.helpers import add_action, change, history, new_risk

# A constant frequency of 2 a year: the ALE is exactly twice the magnitude's mean, draw for draw.
CONSTANT = estimate_body(frequency={"min": 2, "most_likely": 2, "max": 2})


def effect(client: TestClient, action: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = client.put(f"/api/v1/treatment-actions/{action['id']}/loss-effect", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def value(client: TestClient, risk: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = client.get(f"/api/v1/risks/{risk['reference']}/treatment-value", params={"trials": 5_000, **params})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_each_action_and_the_open_plan_are_valued_against_their_cost(client: TestClient, keys: Keys) -> None:
    risk = quantified_risk(client, CONSTANT)
    barriers = add_action(client, risk, title="Barriers", cost={"amount": "20000", "currency": "EUR"})
    pumps = add_action(client, risk, title="Pumps", cost={"amount": "5000", "currency": "USD"})
    drill = add_action(client, risk, title="Drill", cost=None)
    set_effect = effect(client, barriers, frequency={"reduction_percent": 50})
    assert set_effect["version"] == 1 and set_effect["risk"] == risk["reference"]
    assert set_effect["frequency"] == {"reduction_percent": 50} and set_effect["magnitude"] is None
    effect(client, pumps, magnitude={"reduction_percent": 20})
    effect(client, drill, frequency={"range": {"min": 1, "most_likely": 1, "max": 1}})
    answer = value(client, risk, seed=5)
    assert answer["seed"] == 5 and answer["trials"] == 5_000 and answer["currency"] == "EUR"
    by_title = {a["title"]: a for a in answer["actions"]}
    before = by_title["Barriers"]["ale_before"]
    # The same draws before and after: halving the frequency halves the ALE exactly, not within noise.
    assert by_title["Barriers"]["ale_after"] == pytest.approx(before / 2, rel=1e-12)
    assert by_title["Barriers"]["reduction"] == pytest.approx(before / 2, rel=1e-12)
    assert by_title["Barriers"]["cost"] == 20_000
    assert by_title["Barriers"]["return_on_control"] == pytest.approx((before / 2 - 20_000) / 20_000)
    assert by_title["Pumps"]["ale_after"] == pytest.approx(before * 0.8, rel=1e-12)
    assert by_title["Pumps"]["return_on_control"] is None
    assert by_title["Pumps"]["reason"] == "the cost is not in EUR, the estimate's currency"
    assert by_title["Drill"]["ale_after"] == pytest.approx(before / 2, rel=1e-12)  # a new range: 1 a year
    assert by_title["Drill"]["return_on_control"] is None and by_title["Drill"]["reason"] == "no cost given"
    # The plan: the drill's new frequency (1) with the barriers' halving and the pumps' 20 %: 2 → 0.5, × 0.8.
    plan = answer["plan"]
    assert plan["ale_after"] == pytest.approx(before / 4 * 0.8, rel=1e-12)
    assert plan["reason"] == "no cost given"
    # A finished action leaves the open plan; the answer reads the same for a reader, again.
    change(client, drill, status="cancelled", cancellation_reason="Not needed")
    again = client.get(
        f"/api/v1/risks/{risk['reference']}/treatment-value", params={"trials": 5_000, "seed": 5},
        headers=keys.headers("read"),
    ).json()  # fmt: skip
    assert [a["title"] for a in again["actions"]] == ["Barriers", "Pumps"]
    assert again["plan"]["ale_after"] == pytest.approx(before / 2 * 0.8, rel=1e-12)
    assert again["plan"]["reason"] == "the cost is not in EUR, the estimate's currency"
    assert [e["action"] for e in history(client, risk) if e["action"].startswith("loss_effect")] == [
        "loss_effect.set", "loss_effect.set", "loss_effect.set",
    ]  # fmt: skip


def test_an_effect_is_read_changed_with_if_match_and_removed(client: TestClient, keys: Keys) -> None:
    risk = quantified_risk(client)
    action = add_action(client, risk)
    url = f"/api/v1/treatment-actions/{action['id']}/loss-effect"
    assert_problem(client.get(url), 404)
    effect(client, action, magnitude={"range": {"low": 1_000, "high": 10_000}})
    read = client.get(url, headers=keys.headers("read"))
    assert read.headers["ETag"] == '"1"' and read.json()["magnitude"] == {"range": {"low": 1_000, "high": 10_000}}
    assert_problem(client.put(url, json={"frequency": {"reduction_percent": 10}}, headers={"If-Match": '"0"'}), 412)
    assert_problem(client.put(url, json={"frequency": {"reduction_percent": 10}}, headers=keys.headers("read")), 403)
    assert client.delete(url, headers={"If-Match": '"1"'}).status_code == 204
    assert_problem(client.get(url), 404)
    assert_problem(client.get("/api/v1/treatment-actions/999/loss-effect"), 404)


def test_a_risk_without_an_estimate_has_no_treatment_value(client: TestClient) -> None:
    risk = new_risk(client)
    assert_problem(client.get(f"/api/v1/risks/{risk['reference']}/treatment-value"), 404)


def test_a_free_action_has_no_bounded_return(client: TestClient) -> None:
    risk = quantified_risk(client, CONSTANT)
    action = add_action(client, risk, cost={"amount": "0", "currency": "EUR"})
    effect(client, action, frequency={"reduction_percent": 100})
    [valued] = value(client, risk)["actions"]
    assert valued["ale_after"] == 0 and valued["reduction"] == valued["ale_before"]
    assert valued["cost"] == 0 and valued["return_on_control"] is None
    assert valued["reason"] == "the cost is 0: the return has no bound"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"frequency": {}}, "body.frequency"),
        ({"frequency": {"reduction_percent": 10, "range": {"low": 1, "high": 2}}}, "body.frequency"),
        ({"frequency": {"reduction_percent": 101}}, "body.frequency.reduction_percent"),
        ({"magnitude": {"range": {"low": 2, "high": 1}}}, "body.magnitude.range.high"),
    ],
)
def test_a_bad_effect_is_refused_naming_its_field(
    client: TestClient, engine: Engine, body: dict[str, Any], field: str
) -> None:
    action = add_action(client, new_risk(client))
    before = row_counts(engine)
    assert_problem(client.put(f"/api/v1/treatment-actions/{action['id']}/loss-effect", json=body), 422, field)
    assert row_counts(engine) == before
