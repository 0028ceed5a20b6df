"""The aggregate over HTTP on both databases: filters (category, process, risks), the risks not quantified named,
the loss tolerance (set by an admin, refused naming the point, kept in history) and its verdict with the risks
that push the aggregate over, stored runs reproduced by seed, and the curve drawn against the tolerance."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import Keys
from tests.continuity.support import link, make_process
from tests.helpers import assert_problem, row_counts
from tests.quant.helpers import analyse, estimate_body, quantified_risk
from tests.treatments.helpers import events, new_risk

# About 10,000 a year, every year.
STEADY = estimate_body(
    frequency={"min": 9, "most_likely": 10, "max": 11}, magnitude={"min": 900, "most_likely": 1_000, "max": 1_100}
)
# Mostly nothing, now and then a ruinous year.
RARE = estimate_body(frequency={"low": 0.01, "high": 0.2}, magnitude={"low": 100_000, "high": 10_000_000})


def tolerance(client: TestClient, keys: Keys, *points: tuple[float, float], currency: str = "EUR") -> None:
    body = {"currency": currency, "points": [{"loss": loss, "probability": p} for loss, p in points]}
    response = client.put("/api/v1/loss-tolerance", json=body, headers=keys.headers("admin"))
    assert response.status_code == 200, response.text


def test_the_register_s_aggregate_names_the_unquantified_and_what_drives_a_bad_year(
    client: TestClient, keys: Keys
) -> None:
    steady = quantified_risk(client, STEADY, title="Card fraud")
    rare = quantified_risk(client, RARE, title="Ransomware")
    bare = new_risk(client, title="Supplier failure")
    dollars = quantified_risk(client, estimate_body(currency="USD"), title="US lawsuit")
    result = analyse(client)
    figures = result["figures"]
    assert result["currency"] == "EUR" and result["seed"] == 1 and result["trials"] == 2_000
    assert figures["risks"] == 2
    assert figures["not_quantified"] == [
        {"risk": bare["reference"], "title": "Supplier failure", "reason": "no loss estimate"},
        {"risk": dollars["reference"], "title": "US lawsuit", "reason": "estimated in USD, the figures are in EUR"},
    ]
    assert figures["p50"] <= figures["p90"] <= figures["p95"] <= figures["p99"]
    assert figures["mean"] > 10_000
    top = figures["drivers"][0]
    assert top["risk"] == rare["reference"] and top["title"] == "Ransomware" and top["share"] > 0.5
    assert {d["risk"] for d in figures["drivers"]} <= {steady["reference"], rare["reference"]}
    assert figures["tolerance"] == {
        "within": None,
        "reason": "No loss tolerance is set (PUT /api/v1/loss-tolerance).",
        "points": [],
    }
    # Stored: read again as it was, and the same seed reproduces the figures.
    read = client.get(f"/api/v1/loss-analyses/{result['id']}", headers=keys.headers("read"))
    assert read.status_code == 200 and read.json() == result
    assert analyse(client)["figures"] == figures
    listed = client.get("/api/v1/loss-analyses", headers=keys.headers("read")).json()["items"]
    assert listed[1]["id"] == result["id"] and listed[1]["p95"] == figures["p95"]
    assert_problem(client.get("/api/v1/loss-analyses/999"), 404)
    assert_problem(client.post("/api/v1/loss-analyses", json={}, headers=keys.headers("read")), 403)


def test_the_tolerance_verdict_and_the_risks_that_push_it_over(client: TestClient, keys: Keys) -> None:
    quantified_risk(client, STEADY, title="Card fraud")
    rare = quantified_risk(client, RARE, title="Ransomware")
    # At most 1 % chance of losing over 1 M (breached: the rare risk alone goes over it more often); at most 50 %
    # of losing over 5 M... and 90 % over 1,000 (within: a steady year loses about 10,000, so always over 1,000 —
    # breached, as 100 % > 90 %).
    tolerance(client, keys, (1_000.0, 0.9), (1_000_000.0, 0.01), (50_000_000.0, 0.001))
    verdict = analyse(client, trials=20_000)["figures"]["tolerance"]
    assert verdict["within"] is False and verdict["reason"] is None
    small, middle, large = verdict["points"]
    assert small["breached"] is True and small["simulated"] == 1.0 and small["excess"] == pytest.approx(0.1)
    assert middle["breached"] is True and middle["simulated"] > 0.01
    assert middle["drivers"][0]["risk"] == rare["reference"]
    assert large["breached"] is False and large["drivers"] == [] and large["excess"] < 0
    tolerance(client, keys, (1e9, 0.5))
    assert analyse(client)["figures"]["tolerance"]["within"] is True
    tolerance(client, keys, (1e9, 0.5), currency="USD")
    other = analyse(client)["figures"]["tolerance"]
    assert other["within"] is None and other["reason"] == "The loss tolerance is in USD, the figures in EUR."
    history = client.get("/api/v1/loss-tolerance/history", headers=keys.headers("read")).json()
    assert [h["currency"] for h in history] == ["USD", "EUR", "EUR"] and history[0]["set_by"] == "admin-key"
    assert client.get("/api/v1/loss-tolerance").json() == history[0]
    [*_, last] = events(client, "loss.analysis_completed")
    assert last["data"]["within_tolerance"] is None and last["subject_type"] == "loss_analysis"
    breached = events(client, "loss.analysis_completed")[0]["data"]
    assert breached["within_tolerance"] is False and breached["breached"] == [1_000.0, 1_000_000.0]
    assert len(events(client, "loss.tolerance_set")) == 3


def test_the_curve_is_drawn_against_the_tolerance(client: TestClient, keys: Keys) -> None:
    quantified_risk(client, RARE)
    tolerance(client, keys, (1_000_000.0, 0.01))
    result = analyse(client)
    svg = client.get(f"/api/v1/loss-analyses/{result['id']}/curve.svg", headers=keys.headers("read"))
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "<polyline" in svg.text and "Tolerance: at most 1% chance of losing over 1M EUR (breached)" in svg.text


def test_an_aggregate_filters_by_category_process_and_risk(client: TestClient) -> None:
    ops = quantified_risk(client, STEADY, category="operational", title="Ops")
    cyber = quantified_risk(client, RARE, category="cyber", title="Cyber")
    payroll = make_process(client, "payroll")
    link(client, cyber, "process", payroll["reference"])
    by_category = analyse(client, filter={"category": ["Cyber"]})
    assert by_category["scope"]["category"] == ["Cyber"]
    assert [i["risk"] for i in by_category["figures"]["drivers"]] == [cyber["reference"]]
    assert by_category["figures"]["risks"] == 1
    by_process = analyse(client, filter={"process": ["payroll"]})["figures"]
    assert by_process["risks"] == 1 and by_process["drivers"][0]["risk"] == cyber["reference"]
    by_risk = analyse(client, filter={"risk": [ops["reference"]]})["figures"]
    assert by_risk["risks"] == 1 and by_risk["drivers"][0]["risk"] == ops["reference"]
    assert analyse(client, filter={"owner": ["nobody"]})["figures"]["risks"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filter": {"status": ["gone"]}}, "body.filter.status"),
        ({"filter": {"process": ["payroll", "nowhere"]}}, "body.filter.process.1"),
        ({"filter": {"risk": ["R-1", "not a risk"]}}, "body.filter.risk.1"),
        ({"seed": False}, "body.seed"),
        ({"filter": {"colour": ["red"]}}, "body.filter.colour"),
        ({"trials": 200_000}, "body.trials"),
    ],
)
def test_a_bad_analysis_is_refused_naming_its_field(
    client: TestClient, engine: Engine, body: dict[str, Any], field: str
) -> None:
    make_process(client, "payroll")
    before = row_counts(engine)
    assert_problem(client.post("/api/v1/loss-analyses", json=body), 422, field)
    assert row_counts(engine) == before


@pytest.mark.parametrize(
    ("points", "field"),
    [
        ([{"loss": 0.5, "probability": 0.1}], "body.points.0.loss"),
        ([{"loss": 10, "probability": 1}], "body.points.0.probability"),
        ([{"loss": 10, "probability": 0}], "body.points.0.probability"),
        ([{"loss": 10, "probability": 0.1}, {"loss": 100, "probability": 0.2}], "body.points.1.probability"),
        ([{"loss": 10, "probability": 0.1}, {"loss": 10, "probability": 0.05}], "body.points.1.loss"),
        ([], "body.points"),
    ],
)
def test_a_bad_tolerance_is_refused_naming_the_point(
    client: TestClient, keys: Keys, engine: Engine, points: list[dict[str, Any]], field: str
) -> None:
    before = row_counts(engine)
    response = client.put(
        "/api/v1/loss-tolerance", json={"currency": "EUR", "points": points}, headers=keys.headers("admin")
    )
    assert_problem(response, 422, field)
    assert row_counts(engine) == before


def test_only_an_admin_sets_the_tolerance(client: TestClient, keys: Keys) -> None:
    body = {"currency": "EUR", "points": [{"loss": 1e6, "probability": 0.1}]}
    assert_problem(client.put("/api/v1/loss-tolerance", json=body), 403)
    assert_problem(client.get("/api/v1/loss-tolerance"), 404)
