"""Accepting a risk inline over HTTP: expiry dates, and a later material change marking the acceptance."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, risk_body

END_OF_MARCH_31 = "2027-03-31T23:59:59.999999Z"


def _accepted(
    client: TestClient, frozen_clock: FrozenClock, headers: dict[str, str] | None = None, **overrides: Any
) -> dict[str, Any]:
    acceptance = {"approver": "cfo", "expires_at": (frozen_clock.now + timedelta(days=90)).isoformat()}
    body = risk_body(residual={"likelihood": 1, "impact": 2}, treatment="accept", acceptance=acceptance)
    response = client.post("/api/v1/risks", json={**body, **overrides}, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _reassess(
    client: TestClient, risk: dict[str, Any], residual: dict[str, int], headers: dict[str, str] | None = None
) -> None:
    response = client.post(
        f"/api/v1/risks/{risk['id']}/assessments",
        json={"residual": residual, "rationale": "controls failed"},
        headers=headers,
    )
    assert response.status_code == 201, response.text


def _acceptance(client: TestClient, risk: dict[str, Any]) -> dict[str, Any]:
    """The acceptance recorded for the risk."""
    items: list[dict[str, Any]] = client.get("/api/v1/acceptances", params={"risk": risk["reference"]}).json()["items"]
    (found,) = items
    return found


def _flagged_events(client: TestClient, risk: dict[str, Any]) -> list[dict[str, Any]]:
    params = {"type": "acceptance.needs_reapproval", "subject": _acceptance(client, risk)["reference"]}
    return [e["data"] for e in client.get("/api/v1/events", params=params).json()["items"]]


# ---- a material change (the rule was: a writer raising an accepted risk above the appetite voided it) ----


def test_a_higher_level_marks_the_acceptance_as_needing_reapproval_and_it_stays_in_force(
    client: TestClient, frozen_clock: FrozenClock
) -> None:
    risk = _accepted(client, frozen_clock)
    assert risk["level"] == "low" and risk["acceptance"]["approver"] == "cfo"
    assert _acceptance(client, risk)["needs_reapproval"] is False
    frozen_clock.advance(timedelta(days=1))
    _reassess(client, risk, {"likelihood": 5, "impact": 5})

    after = client.get(f"/api/v1/risks/{risk['id']}").json()
    assert (after["level"], after["treatment"]) == ("critical", "accept")
    assert after["acceptance"] == risk["acceptance"]  # in force until it expires or is revoked
    acceptance = _acceptance(client, risk)
    assert (acceptance["status"], acceptance["needs_reapproval"]) == ("approved", True)
    flagged = client.get("/api/v1/acceptances", params={"needs_reapproval": "true"}).json()["items"]
    assert [a["reference"] for a in flagged] == [acceptance["reference"]]
    (event,) = _flagged_events(client, risk)
    assert event["risk"] == risk["reference"] and event["actor"] == "write-key"
    assert event["reason"] == f"{risk['reference']} rose from 'low' to 'critical'"
    history = client.get(f"/api/v1/risks/{risk['id']}/history").json()["items"]
    assert [h["action"] for h in history] == ["created", "assessed", "acceptance_needs_reapproval"]
    assert history[-1]["note"] == f"{acceptance['reference']}: {event['reason']}"
    assert datetime.fromisoformat(history[-1]["at"]) == frozen_clock.now
    trail = client.get(f"/api/v1/acceptances/{acceptance['reference']}/history").json()["items"]
    assert [h["action"] for h in trail] == ["recorded", "needs_reapproval"]
    assert trail[-1]["changes"] == {"needs_reapproval": {"old": False, "new": True}}

    _reassess(client, risk, {"likelihood": 3, "impact": 3})  # lower again: flagged still, nothing new announced
    _reassess(client, risk, {"likelihood": 5, "impact": 5})  # higher again: on the risk's history, one event still
    assert len(_flagged_events(client, risk)) == 1
    actions = [h["action"] for h in client.get(f"/api/v1/risks/{risk['id']}/history").json()["items"]]
    assert actions.count("acceptance_needs_reapproval") == 2


def test_the_same_or_a_lower_level_is_no_material_change_whoever_reassesses(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    risk = _accepted(client, frozen_clock, residual={"likelihood": 2, "impact": 2})  # low
    _reassess(client, risk, {"likelihood": 1, "impact": 2})  # still low
    _reassess(client, risk, {"likelihood": 1, "impact": 1})  # lower
    assert _acceptance(client, risk)["needs_reapproval"] is False
    _reassess(client, risk, {"likelihood": 3, "impact": 3}, headers=keys.headers("admin"))  # medium: higher
    assert _acceptance(client, risk)["needs_reapproval"] is True  # an admin's reassessment is no re-approval
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["treatment"] == "accept"


def test_an_admin_rescore_keeps_acceptances_lists_those_above_the_appetite_and_marks_them(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    risk = _accepted(client, frozen_clock, residual={"likelihood": 1, "impact": 5})  # medium: a writer may accept
    spec = client.get("/api/v1/matrices/current").json()["spec"]
    spec["name"], spec["cells"][0][4] = "Stricter", "high"
    admin = keys.headers("admin")
    assert client.post("/api/v1/matrices", json=spec, headers=admin).status_code == 201
    result = client.post("/api/v1/matrices/2/rescore", json={"rationale": "new method"}, headers=admin).json()
    assert result["accepted_above_appetite"] == [risk["reference"]]
    after = client.get(f"/api/v1/risks/{risk['id']}").json()
    assert (after["level"], after["treatment"]) == ("high", "accept")
    (event,) = _flagged_events(client, risk)
    assert event["reason"] == f"{risk['reference']} moved to matrix version 2 (level 'high')"


# ---- expiry given as a date ----


def test_an_expiry_date_alone_lasts_through_that_day_utc(client: TestClient, frozen_clock: FrozenClock) -> None:
    body = risk_body(
        residual={"likelihood": 1, "impact": 2}, treatment="accept",
        acceptance={"approver": "cfo", "expires_at": "2027-03-31"},
    )  # fmt: skip
    risk = client.post("/api/v1/risks", json=body).json()
    assert risk["acceptance"]["expires_at"] == END_OF_MARCH_31

    frozen_clock.advance(datetime(2027, 3, 31, 23, 59, tzinfo=UTC) - frozen_clock.now)
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["acceptance"]["expired"] is False
    frozen_clock.advance(timedelta(minutes=1))  # midnight: the first moment of April 1st
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["acceptance"]["expired"] is True


def test_patch_reads_an_expiry_date_the_same_way(client: TestClient, frozen_clock: FrozenClock) -> None:
    risk = client.post("/api/v1/risks", json=risk_body(residual={"likelihood": 1, "impact": 2})).json()
    change = {"treatment": "accept", "acceptance": {"approver": "cfo", "expires_at": "2027-03-31"}}
    patched = client.patch(f"/api/v1/risks/{risk['id']}", json=change)
    assert patched.status_code == 200, patched.text
    assert patched.json()["acceptance"]["expires_at"] == END_OF_MARCH_31


@pytest.mark.parametrize("value", ["2027-02-30", "2027-03-31T12:00:00", "31/03/2027"])
def test_an_impossible_or_zoneless_expiry_is_refused(client: TestClient, frozen_clock: FrozenClock, value: str) -> None:
    body = risk_body(
        residual={"likelihood": 1, "impact": 2}, treatment="accept", acceptance={"approver": "cfo", "expires_at": value}
    )
    assert_problem(client.post("/api/v1/risks", json=body), 422, "body.acceptance.expires_at")


def test_an_import_reads_an_expiry_date_as_the_api_does(client: TestClient, frozen_clock: FrozenClock) -> None:
    header = ["title", "category", "owner", "inherent_likelihood", "inherent_impact", "treatment",
              "acceptance_approver", "acceptance_expires_at", "next_review_at"]  # fmt: skip
    out = io.StringIO()
    csv.writer(out).writerows([header, ["From CSV", "ops", "cto", 1, 2, "accept", "cfo", "2027-03-31", "2027-02-01"]])
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has its one sheet
    sheet.append(header)
    sheet.append(["From XLSX", "ops", "cto", 1, 2, "accept", "cfo", date(2027, 3, 31), date(2027, 2, 1)])
    sheet.append(["With a time", "ops", "cto", 1, 2, "accept", "cfo", datetime(2027, 3, 31, 12, 0), None])
    xlsx = io.BytesIO()
    book.save(xlsx)
    for name, content in (("r.csv", out.getvalue().encode()), ("r.xlsx", xlsx.getvalue())):
        response = client.post("/api/v1/risks/import", files={"file": (name, content)})
        assert response.status_code == 200, response.text
    risks = {r["title"]: r for r in client.get("/api/v1/risks").json()["items"]}
    for title in ("From CSV", "From XLSX"):
        assert risks[title]["acceptance"]["expires_at"] == END_OF_MARCH_31, title
        assert risks[title]["next_review_at"] == "2027-02-01T00:00:00Z", title  # a review date: from the day's start
    assert risks["With a time"]["acceptance"]["expires_at"] == "2027-03-31T12:00:00Z"
