"""The richer risk in files and snapshots: the live export's columns, the import that reads them back, the review
snapshot's summary of risks outside their appetite and the quarter's movements in and out of it."""

import csv
import io
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from riskops.reviews.movements import movements
from riskops.reviews.snapshots import register_as_of
from tests.conftest import FrozenClock, Keys
from tests.helpers import risk_body
from tests.risks.test_import import _upload


def _rows(client: TestClient) -> dict[str, dict[str, str]]:
    response = client.get("/api/v1/risks/export?format=csv&bom=false")
    assert response.status_code == 200, response.text
    return {row["reference"]: row for row in csv.DictReader(io.StringIO(response.text))}


def test_the_export_carries_the_statement_target_and_appetite_and_reads_back(client: TestClient) -> None:
    body = risk_body(
        type="threat", cause="Heavy rain", event="the river floods the site", consequence="no billing",
        source="Weather", objectives=["Billing", "Support"], inherent={"likelihood": 4, "impact": 4}, residual=None,
        target={"likelihood": 2, "impact": 2, "date": "2027-06-30"},
    )  # fmt: skip
    risk = client.post("/api/v1/risks", json=body).json()
    row = _rows(client)[risk["reference"]]
    assert (row["statement_cause"], row["statement_event"], row["statement_consequence"]) == (
        "Heavy rain", "the river floods the site", "no billing",
    )  # fmt: skip
    assert (row["type"], row["source"], row["objectives"]) == ("threat", "Weather", "Billing;Support")
    assert (row["target_level"], row["target_date"]) == ("low", "2027-06-30")
    assert (row["outside_appetite"], row["beyond_tolerance"], row["appetite_response"]) == ("true", "false", "target")

    # The exported file is read back unchanged: every column it holds is the risk as it stands.
    exported = client.get("/api/v1/risks/export?format=csv").content
    report = _upload(client, "register.csv", exported)
    assert report.status_code == 200, report.text
    assert (report.json()["unchanged"], report.json()["updated"]) == ([risk["reference"]], [])

    # A register's own words for the statement and the target are understood; a plain "Consequence" stays the impact.
    content = (
        b"Risk,Owner,Category,Likelihood,Consequence,Cause,Risk event,Effect,Risk type,Objectives affected,"
        b"Target L,Target I,Target date\r\n"
        b"Supplier fails,cpo,supply,3,4,One supplier,the supplier goes bankrupt,no parts,threat,Assembly; Sales,"
        b"1,2,31/12/2027\r\n"
    )
    created = _upload(client, "theirs.csv", content)
    assert created.status_code == 200, created.text
    [reference] = created.json()["created"]
    new = client.get(f"/api/v1/risks/{reference}").json()
    assert new["inherent"]["impact"] == 4 and new["objectives"] == ["Assembly", "Sales"]
    assert new["statement"] == (
        "Because of One supplier, there is a risk that the supplier goes bankrupt, which would lead to no parts."
    )
    assert new["target"] == {"likelihood": 1, "impact": 2, "score": 2, "level": "low", "date": "2027-12-31"}

    worse = b"Risk,Owner,Category,Likelihood,Impact,Target likelihood,Target impact\r\nX,o,c,1,1,5,5\r\n"
    refused = _upload(client, "worse.csv", worse)
    assert refused.status_code == 422, refused.text
    assert [(e["row"], e["column"]) for e in refused.json()["errors"]] == [(2, "target_likelihood")]


def test_snapshots_list_the_risks_outside_appetite_and_movements_show_who_crossed(
    client: TestClient, keys: Keys, session: Session, frozen_clock: FrozenClock
) -> None:
    inside = client.post("/api/v1/risks", json=risk_body(inherent={"likelihood": 2, "impact": 2}, residual=None))
    outside = client.post("/api/v1/risks", json=risk_body(inherent={"likelihood": 4, "impact": 4}, residual=None))
    inside_ref, outside_ref = inside.json()["reference"], outside.json()["reference"]
    before = register_as_of(session, frozen_clock.now, None)
    assert before["summary"]["outside_appetite"] == [outside_ref]
    assert before["summary"]["outside_appetite_unanswered"] == [outside_ref]

    frozen_clock.advance(timedelta(days=1))
    client.post(f"/api/v1/risks/{inside_ref}/assessments",
                json={"inherent": {"likelihood": 5, "impact": 5}, "rationale": "worse"})  # fmt: skip
    client.post(f"/api/v1/risks/{outside_ref}/assessments",
                json={"inherent": {"likelihood": 1, "impact": 1}, "rationale": "fixed"})  # fmt: skip
    session.rollback()  # a new transaction, which sees what the requests wrote
    after = register_as_of(session, frozen_clock.now, None)
    moved = movements(before, after)
    assert moved["outside_appetite_new"] == [{"risk": inside_ref, "from": "low", "to": "critical"}]
    assert moved["back_within_appetite"] == [{"risk": outside_ref, "from": "high", "to": "low"}]
    record = {r["reference"]: r for r in after["risks"]}[inside_ref]
    assert (record["outside_appetite"], record["appetite_response"], record["type"]) == (True, "none", "threat")
