"""A risk's inline acceptance ({approver, expires_at} on create, edit and import): an acceptance approved outside
riskops, recorded as such, with four eyes by name, an admin above the appetite, none beyond the tolerance."""

import csv
import io
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, risk_body, row_counts
from tests.risks.acceptances.flows import Json, new_risk, ok


def _inline(clock: FrozenClock, approver: str = "cfo", days: int = 90) -> dict[str, str]:
    return {"approver": approver, "expires_at": (clock.now + timedelta(days=days)).isoformat()}


def _recorded(client: TestClient, risk: Json) -> list[Json]:
    items: list[Json] = ok(client.get("/api/v1/acceptances", params={"risk": risk["reference"]}))["items"]
    return items


def test_an_inline_acceptance_is_recorded_as_approved_outside_riskops(
    client: TestClient, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client, treatment="transfer")
    change = {"treatment": "accept", "acceptance": _inline(frozen_clock)}
    accepted = ok(client.patch(f"/api/v1/risks/{risk['id']}", json=change))
    assert accepted["acceptance"]["approver"] == "cfo"
    (listed,) = _recorded(client, risk)
    shown = ok(client.get(f"/api/v1/acceptances/{listed['reference']}"))
    assert (shown["status"], shown["recorded"], shown["requested_by"], shown["approved_by"]) == (
        "approved", True, "write-key", ["cfo"]
    )  # fmt: skip
    assert shown["expires_at"] == accepted["acceptance"]["expires_at"]
    (decision,) = shown["decisions"]
    assert (decision["decided_by"], decision["recorded_by"], decision["role"]) == ("cfo", "write-key", "write")
    (covered,) = shown["covered"]
    assert covered["treatment_before"] == "transfer" and covered["in_force"]
    assert covered["states"][0]["treatment"] == "accept" and covered["states"][0]["level"] == "low"

    # The same acceptance sent again changes nothing; a new one takes over from it, keeping the plan.
    ok(client.patch(f"/api/v1/risks/{risk['id']}", json=change))
    assert len(_recorded(client, risk)) == 1
    ok(client.patch(f"/api/v1/risks/{risk['id']}", json={"acceptance": _inline(frozen_clock, "board", 120)}))
    newer, older = _recorded(client, risk)
    assert (newer["status"], newer["extends"], older["status"]) == ("approved", older["reference"], "superseded")
    assert ok(client.get(f"/api/v1/acceptances/{newer['reference']}"))["covered"][0]["treatment_before"] == "transfer"

    # Another treatment takes the risk out of its acceptance: with no risk left, the acceptance is withdrawn.
    ok(client.patch(f"/api/v1/risks/{risk['id']}", json={"treatment": "mitigate"}))
    assert _recorded(client, risk)[0]["status"] == "withdrawn"
    assert ok(client.get(f"/api/v1/risks/{risk['id']}"))["acceptance"] is None


def test_an_inline_acceptance_keeps_four_eyes_by_name(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client)
    before = row_counts(engine)
    for approver in ("write-key", " WRITE-KEY "):
        change = {"treatment": "accept", "acceptance": _inline(frozen_clock, approver)}
        assert_problem(client.patch(f"/api/v1/risks/{risk['id']}", json=change), 403, "body.acceptance.approver")
    body = risk_body(treatment="accept", residual=None, inherent={"likelihood": 1, "impact": 2},
                     acceptance=_inline(frozen_clock, "write-key"))  # fmt: skip
    assert_problem(client.post("/api/v1/risks", json=body), 403, "body.acceptance.approver")
    assert row_counts(engine) == before


def test_beyond_the_tolerance_no_inline_acceptance_is_taken_and_the_expiry_is_capped(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    admin = keys.headers("admin")
    ok(client.put("/api/v1/appetite/cyber", json={"appetite": "medium", "tolerance": "high"}, headers=admin))
    critical = new_risk(client, 5, 5, category="cyber")
    high = new_risk(client, 3, 4, category="cyber")
    before = row_counts(engine)
    change = {"treatment": "accept", "acceptance": _inline(frozen_clock)}
    refused = assert_problem(client.patch(f"/api/v1/risks/{critical['id']}", json=change, headers=admin), 422,
                             "body.acceptance")  # fmt: skip
    assert "tolerance" in refused["detail"] and "/api/v1/acceptances" in refused["detail"]
    body = risk_body(category="cyber", inherent={"likelihood": 5, "impact": 5}, residual=None, treatment="accept",
                     acceptance=_inline(frozen_clock))  # fmt: skip
    assert_problem(client.post("/api/v1/risks", json=body, headers=admin), 422, "body.acceptance")
    assert_problem(client.patch(f"/api/v1/risks/{high['id']}", json=change), 403, "body.treatment")  # appetite
    long = {"treatment": "accept", "acceptance": _inline(frozen_clock, days=366)}
    assert_problem(client.patch(f"/api/v1/risks/{high['id']}", json=long, headers=admin), 422,
                   "body.acceptance.expires_at")  # fmt: skip
    assert row_counts(engine) == before
    assert ok(client.patch(f"/api/v1/risks/{high['id']}", json=change, headers=admin))["treatment"] == "accept"


def test_an_import_records_each_rows_acceptance_and_refuses_one_past_the_cap(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock
) -> None:
    def upload(*rows: list[Any]) -> Any:
        out = io.StringIO()
        header = ["title", "category", "owner", "inherent_likelihood", "inherent_impact", "treatment",
                  "acceptance_approver", "acceptance_expires_at"]  # fmt: skip
        csv.writer(out).writerows([header, *rows])
        return client.post("/api/v1/risks/import", files={"file": ("r.csv", out.getvalue().encode())})

    within, beyond = "2027-03-31", "2027-07-31"  # 273 and 395 days from the frozen clock
    imported = ok(upload(["A", "ops", "cto", 1, 2, "accept", "cfo", within], ["B", "ops", "cto", 1, 1, "accept",
                                                                             "board", within]))  # fmt: skip
    assert len(imported["created"]) == 2
    listed = ok(client.get("/api/v1/acceptances"))["items"]
    assert sorted((a["risks"][0], a["approved_by"][0], a["recorded"]) for a in listed) == [
        (imported["created"][0], "cfo", True), (imported["created"][1], "board", True)
    ]  # fmt: skip
    before = row_counts(engine)
    refused = assert_problem(upload(["C", "ops", "cto", 1, 2, "accept", "cfo", beyond]), 422)
    assert "Risk 'C'" in refused["detail"] and "365 days" in refused["detail"]
    four_eyes = assert_problem(upload(["D", "ops", "cto", 1, 2, "accept", "write-key", within]), 422)
    assert [(e["row"], e["column"]) for e in four_eyes["errors"]] == [(2, "acceptance_approver")]
    assert row_counts(engine) == before
