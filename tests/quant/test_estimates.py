"""A risk's loss estimate and its simulations over HTTP on both databases: set, read, changed with If-Match,
recorded in the risk's history, refused naming the field, and simulated reproducibly by seed."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import Keys
from tests.helpers import assert_problem, row_counts
from tests.quant.helpers import estimate_body, quantified_risk
from tests.treatments.helpers import events, history, new_risk


def test_an_estimate_is_set_read_changed_and_removed_with_its_history(client: TestClient, keys: Keys) -> None:
    risk = new_risk(client)
    url = f"/api/v1/risks/{risk['reference']}/loss-estimate"
    assert_problem(client.get(url), 404)
    body = estimate_body(
        magnitude=None, primary={"low": 1_000, "high": 100_000}, secondary={"min": 0, "most_likely": 0, "max": 5_000}
    )
    put = client.put(url, json=body)
    assert put.status_code == 200, put.text
    assert put.headers["ETag"] == '"1"'
    estimate = put.json()
    assert estimate["currency"] == "EUR" and estimate["version"] == 1 and estimate["updated_by"] == "write-key"
    assert estimate["primary"] == {"low": 1_000, "high": 100_000} and estimate["magnitude"] is None
    assert estimate["frequency"] == {"min": 0.5, "most_likely": 2, "max": 6}
    read = client.get(url, headers=keys.headers("read"))
    assert read.json() == estimate and read.headers["ETag"] == '"1"'
    # The same again changes nothing; a stale If-Match is refused, a current one accepted.
    assert client.put(url, json=body).json()["version"] == 1
    changed = client.put(url, json=estimate_body(currency="USD"), headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.json()["version"] == 2 and changed.json()["currency"] == "USD"
    assert_problem(client.put(url, json=estimate_body(), headers={"If-Match": '"1"'}), 412)
    entries = [e for e in history(client, risk) if e["action"].startswith("loss_estimate")]
    assert [e["action"] for e in entries] == ["loss_estimate.set", "loss_estimate.set"]
    assert entries[0]["changes"]["loss_estimate"]["old"] is None
    assert entries[1]["changes"]["loss_estimate"]["new"]["currency"] == "USD"
    assert_problem(client.delete(url, headers={"If-Match": '"1"'}), 412)
    assert client.delete(url, headers={"If-Match": '"2"'}).status_code == 204
    assert_problem(client.get(url), 404)
    assert history(client, risk)[-1]["action"] == "loss_estimate.deleted"
    announced = events(client, "loss.*", risk["reference"])
    assert [e["type"] for e in announced] == ["loss.estimate_set", "loss.estimate_set", "loss.estimate_deleted"]
    assert announced[1]["data"]["estimate"]["currency"] == "USD" and announced[2]["data"]["estimate"] is None
    assert announced[0]["data"]["actor"] == "write-key"


def test_only_a_writer_changes_an_estimate(client: TestClient, keys: Keys) -> None:
    risk = quantified_risk(client)
    url = f"/api/v1/risks/{risk['reference']}/loss-estimate"
    reader = keys.headers("read")
    assert_problem(client.put(url, json=estimate_body(), headers=reader), 403)
    assert_problem(client.delete(url, headers=reader), 403)
    assert_problem(client.post(url + "/simulations", json={}, headers=reader), 403)
    assert client.get(url, headers=reader).status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"frequency": {"min": 3, "most_likely": 2, "max": 6}}, "body.frequency.most_likely"),
        ({"frequency": {"min": 1, "most_likely": 7, "max": 6}}, "body.frequency.max"),
        ({"frequency": {"low": 5, "high": 5}}, "body.frequency.high"),
        ({"frequency": {"low": 0, "high": 5}}, "body.frequency.low"),
        ({"frequency": {"min": 1, "max": 6}}, "body.frequency"),
        ({"frequency": {"min": 1, "most_likely": 2, "max": 6, "low": 1}}, "body.frequency"),
        ({"frequency": {"min": -1, "most_likely": 2, "max": 6}}, "body.frequency.min"),
        ({"frequency": {"min": 1, "most_likely": 2, "max": 1e7}}, "body.frequency.max"),
        ({"magnitude": {"low": 1, "high": 1e14}}, "body.magnitude.high"),
        ({"magnitude": None}, "body.magnitude"),
        ({"primary": {"low": 1, "high": 2}}, "body.magnitude"),
        ({"magnitude": None, "secondary": {"low": 1, "high": 2}}, "body.primary"),
        ({"currency": "XYZ"}, "body.currency"),
        ({"rationale": "x" * 5001}, "body.rationale"),
    ],
)
def test_a_bad_estimate_is_refused_naming_its_field(
    client: TestClient, engine: Engine, change: dict[str, Any], field: str
) -> None:
    risk = new_risk(client)
    before = row_counts(engine)
    response = client.put(f"/api/v1/risks/{risk['reference']}/loss-estimate", json=estimate_body(**change))
    assert_problem(response, 422, field)
    assert row_counts(engine) == before


def test_a_simulation_is_stored_with_its_inputs_and_reproduced_by_its_seed(client: TestClient, keys: Keys) -> None:
    risk = quantified_risk(client)
    url = f"/api/v1/risks/{risk['reference']}/loss-estimate/simulations"
    assert_problem(client.get(url + "/latest"), 404)
    first = client.post(url, json={"trials": 5_000, "seed": 99})
    assert first.status_code == 201, first.text
    run = first.json()
    assert run["seed"] == 99 and run["trials"] == 5_000 and run["currency"] == "EUR" and run["by"] == "write-key"
    assert run["inputs"]["frequency"] == {"min": 0.5, "most_likely": 2, "max": 6}
    figures = run["figures"]
    assert 0 < figures["p50"] < figures["p90"] < figures["p95"] < figures["p99"]
    assert len(figures["curve"]) == 50
    probabilities = [p["probability"] for p in figures["curve"]]
    assert probabilities == sorted(probabilities, reverse=True)
    # E = E[LEF]·E[LM] = 2.4167 × 94,167 ≈ 227,569: within 5 % at 5,000 trials (the standard error is about 2.6 %).
    assert figures["mean"] == pytest.approx(227_569, rel=0.1)
    again = client.post(url, json={"trials": 5_000, "seed": 99}).json()
    assert again["figures"] == figures and again["id"] != run["id"]
    drawn = client.post(url, json={}).json()
    assert drawn["trials"] == 10_000 and isinstance(drawn["seed"], int) and drawn["figures"] != figures
    listed = client.get(url, headers=keys.headers("read")).json()
    assert [item["id"] for item in listed["items"]] == [drawn["id"], again["id"], run["id"]]
    assert client.get(url + "/latest").json() == drawn
    svg = client.get(f"/api/v1/risks/{risk['reference']}/loss-estimate/curve.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "<title" in svg.text and "Primary data centre flooded" in svg.text and "<polyline" in svg.text
    assert_problem(client.post(url, json={"trials": 999}), 422, "body.trials")
    assert_problem(client.post(url, json={"trials": 100_001}), 422, "body.trials")
    assert_problem(client.post(url, json={"seed": -1}), 422, "body.seed")


def test_a_risk_without_an_estimate_cannot_be_simulated(client: TestClient) -> None:
    risk = new_risk(client)
    assert_problem(client.post(f"/api/v1/risks/{risk['reference']}/loss-estimate/simulations", json={}), 404)
    assert_problem(client.get("/api/v1/risks/R-9999/loss-estimate"), 404)


def test_a_title_is_escaped_in_the_chart(client: TestClient) -> None:
    risk = quantified_risk(client, title="<script>alert(1)</script> & co")
    url = f"/api/v1/risks/{risk['reference']}/loss-estimate"
    assert client.post(url + "/simulations", json={"trials": 1_000, "seed": 1}).status_code == 201
    svg = client.get(url + "/curve.svg").text
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in svg
