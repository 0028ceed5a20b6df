"""Requesting and deciding on an acceptance over HTTP: four eyes, an admin above the appetite, two approvals beyond
the tolerance, a reason for a rejection, the expiry cap, one acceptance in force per risk."""

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, row_counts
from tests.risks.acceptances.flows import People, decide, events, new_risk, ok, request, risk_actions


def test_a_request_keeps_each_risks_state_and_someone_else_approves_it(
    client: TestClient, people: People, frozen_clock: FrozenClock
) -> None:
    low, medium = new_risk(client, 1, 2), new_risk(client, 3, 3, treatment="transfer")
    response = request(client, people["ann"], frozen_clock, low, medium, conditions="Backups tested monthly")
    acceptance = ok(response, 201)
    ref = acceptance["reference"]
    assert ref.startswith("ACC-") and response.headers["Location"] == f"/api/v1/acceptances/{ref}"
    assert response.headers["ETag"] == '"1"'
    assert (acceptance["status"], acceptance["requested_by"], acceptance["risks"]) == (
        "requested", "ann", [low["reference"], medium["reference"]]
    )  # fmt: skip
    assert acceptance["conditions"] == "Backups tested monthly" and acceptance["recorded"] is False
    assert acceptance["approval"] == {"approvals": 1, "admin": False, "given": 0}
    [state] = acceptance["covered"][1]["states"]
    assert (state["decision"], state["level"], state["treatment"]) == (None, "medium", "transfer")
    assert state["matrix_version"] == 1 and state["inherent"] == {"likelihood": 3, "impact": 3, "score": 9,
                                                                   "level": "medium", "impacts": None}  # fmt: skip
    assert (state["appetite"], state["tolerance"], state["outside_appetite"]) == ("medium", None, False)
    assert acceptance["covered"][1]["treatment_before"] == "transfer" and not acceptance["covered"][1]["in_force"]
    assert ok(client.get(f"/api/v1/risks/{medium['id']}"))["treatment"] == "transfer"  # not accepted yet
    assert "acceptance_requested" in risk_actions(client, medium)
    assert [e["data"]["risks"] for e in events(client, "acceptance.requested", ref)] == [acceptance["risks"]]

    assert_problem(decide(client, acceptance, "approve", people["ann"]), 403)  # four eyes
    frozen_clock.advance(timedelta(hours=1))
    decided = ok(decide(client, acceptance, "approve", people["bob"], "Within appetite"))
    assert (decided["status"], decided["approved_by"], decided["approval"]) == ("approved", ["bob"], None)
    assert datetime.fromisoformat(decided["approved_at"]) == frozen_clock.now
    [decision] = decided["decisions"]
    assert (decision["kind"], decision["decided_by"], decision["role"], decision["comment"]) == (
        "approve", "bob", "write", "Within appetite"
    )  # fmt: skip
    assert decision["recorded_by"] is None
    covered = decided["covered"][1]
    assert covered["in_force"] and [s["decision"] for s in covered["states"]] == [None, decision["id"]]
    risk = ok(client.get(f"/api/v1/risks/{medium['id']}"))
    assert risk["treatment"] == "accept"
    assert risk["acceptance"] == {"approver": "bob", "expires_at": acceptance["expires_at"], "expired": False}
    assert risk_actions(client, medium)[-1] == "acceptance_approved"
    (approval,) = events(client, "acceptance.approved", ref)
    assert approval["data"]["approved_by"] == ["bob"] and approval["data"]["actor"] == "bob"
    assert_problem(decide(client, acceptance, "approve", people["carol"]), 409)  # decided already


def test_above_the_appetite_only_an_admin_approves(
    client: TestClient, people: People, frozen_clock: FrozenClock
) -> None:
    high = new_risk(client, 3, 4)
    acceptance = ok(request(client, people["ann"], frozen_clock, high), 201)
    assert acceptance["approval"] == {"approvals": 1, "admin": True, "given": 0}
    assert_problem(decide(client, acceptance, "approve", people["bob"]), 403)
    assert_problem(decide(client, acceptance, "approve", people["ann"]), 403)
    assert ok(decide(client, acceptance, "approve", people["carol"]))["status"] == "approved"


def test_beyond_the_tolerance_two_people_approve_one_of_them_an_admin(
    client: TestClient, keys: Keys, people: People, frozen_clock: FrozenClock
) -> None:
    limits = {"appetite": "medium", "tolerance": "high"}
    ok(client.put("/api/v1/appetite/cyber", json=limits, headers=keys.headers("admin")))
    critical = new_risk(client, 5, 5, category="Cyber")
    acceptance = ok(request(client, people["ann"], frozen_clock, critical), 201)
    ref = acceptance["reference"]
    assert acceptance["approval"] == {"approvals": 2, "admin": True, "given": 0}
    assert acceptance["covered"][0]["states"][0]["beyond_tolerance"] is True

    first = ok(decide(client, acceptance, "approve", people["bob"], "Compensating controls in place"))
    assert (first["status"], first["approval"]["given"], first["approved_by"]) == ("requested", 1, ["bob"])
    assert ok(client.get(f"/api/v1/risks/{critical['id']}"))["treatment"] == "mitigate"  # not accepted yet
    assert [e["data"]["approved_by"] for e in events(client, "acceptance.awaiting_second_approval", ref)] == [["bob"]]
    assert_problem(decide(client, acceptance, "approve", people["bob"]), 403)  # the same person twice
    assert_problem(decide(client, acceptance, "approve", people["ann"]), 403)  # the requester
    assert_problem(decide(client, acceptance, "approve", keys.headers("write")), 403)  # two writers: no admin

    second = ok(decide(client, acceptance, "approve", people["carol"]))
    assert (second["status"], second["approved_by"]) == ("approved", ["bob", "carol"])
    assert [d["role"] for d in second["decisions"]] == ["write", "admin"]
    assert len(second["covered"][0]["states"]) == 3  # the request's and each approval's
    risk = ok(client.get(f"/api/v1/risks/{critical['id']}"))
    assert (risk["treatment"], risk["acceptance"]["approver"]) == ("accept", "bob and carol")


def test_two_admins_approve_beyond_the_tolerance_and_neither_may_be_the_requester(
    client: TestClient, keys: Keys, people: People, frozen_clock: FrozenClock
) -> None:
    ok(client.put("/api/v1/appetite/ops", json={"appetite": "low", "tolerance": "low"}, headers=keys.headers("admin")))
    medium = new_risk(client, 3, 3, category="ops")
    acceptance = ok(request(client, people["carol"], frozen_clock, medium), 201)
    assert_problem(decide(client, acceptance, "approve", people["carol"]), 403)
    assert ok(decide(client, acceptance, "approve", people["dave"]))["status"] == "requested"
    assert ok(decide(client, acceptance, "approve", keys.headers("admin")))["status"] == "approved"


def test_a_rejection_says_why_and_ends_the_request(
    client: TestClient, people: People, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client)
    acceptance = ok(request(client, people["ann"], frozen_clock, risk), 201)
    assert_problem(decide(client, acceptance, "reject", people["bob"]), 422, "body.comment")
    assert_problem(decide(client, acceptance, "reject", people["bob"], "x" * 2001), 422, "body.comment")
    rejected = ok(decide(client, acceptance, "reject", people["bob"], "Treat it: the fix is cheap"))
    assert rejected["status"] == "rejected" and rejected["ended_at"] is not None
    assert [(d["kind"], d["comment"]) for d in rejected["decisions"]] == [("reject", "Treat it: the fix is cheap")]
    assert_problem(decide(client, acceptance, "approve", people["carol"]), 409)
    assert ok(client.get(f"/api/v1/risks/{risk['id']}"))["treatment"] == "mitigate"
    assert "acceptance_rejected" in risk_actions(client, risk)
    assert [e["data"]["comment"] for e in events(client, "acceptance.rejected")] == ["Treat it: the fix is cheap"]


def test_the_expiry_is_mandatory_in_the_future_and_capped(
    client: TestClient, people: People, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client)
    body = {"risks": [risk["reference"]], "justification": "j"}
    assert_problem(client.post("/api/v1/acceptances", json=body, headers=people["ann"]), 422, "body.expires_at")
    past = request(client, people["ann"], frozen_clock, risk, days=-1)
    assert_problem(past, 422, "body.expires_at")
    beyond = assert_problem(request(client, people["ann"], frozen_clock, risk, days=366), 422, "body.expires_at")
    assert "365 days" in beyond["detail"] and "RISKOPS_ACCEPTANCE_MAX_DAYS" in beyond["detail"]
    at_the_cap = ok(request(client, people["ann"], frozen_clock, risk, days=365), 201)
    assert datetime.fromisoformat(at_the_cap["expires_at"]) == frozen_clock.now + timedelta(days=365)
    # A date alone lasts through that day: given as the cap's own day, it ends after the cap.
    last_day = (frozen_clock.now + timedelta(days=365)).date().isoformat()
    ok(decide(client, at_the_cap, "reject", people["bob"], "again"))
    assert_problem(request(client, people["ann"], frozen_clock, risk, expires_at=last_day), 422, "body.expires_at")


def test_a_risk_is_accepted_under_one_acceptance_at_a_time_and_only_while_open(
    client: TestClient, people: People, frozen_clock: FrozenClock
) -> None:
    risk, closed = new_risk(client), new_risk(client, title="Old site")
    ok(client.post(f"/api/v1/risks/{closed['id']}/close", json={"reason": "Site sold"}))
    first = ok(request(client, people["ann"], frozen_clock, risk), 201)
    second = ok(request(client, people["bob"], frozen_clock, risk), 201)  # two requests may wait side by side
    ok(decide(client, first, "approve", people["bob"]))
    again = assert_problem(request(client, people["ann"], frozen_clock, risk), 409, "body.risks.0")
    assert f"extension of {first['reference']}" in again["detail"]
    assert_problem(decide(client, second, "approve", people["ann"]), 409)  # the other one holds the risk now
    assert_problem(request(client, people["ann"], frozen_clock, closed), 422, "body.risks.0")
    assert_problem(request(client, people["ann"], frozen_clock, {"reference": "R-9999"}), 422, "body.risks.0")
    assert_problem(request(client, people["ann"], frozen_clock, risk, risks=[risk["reference"], "X-1"]), 422,
                   "body.risks.1")  # fmt: skip
    assert_problem(request(client, people["ann"], frozen_clock, risk, risks=[]), 422, "body.risks")
    assert_problem(request(client, people["ann"], frozen_clock, risk, risks=["R-1"] * 101), 422, "body.risks")


def test_refusals_write_nothing_and_readers_cannot_decide(
    client: TestClient, engine: Engine, keys: Keys, people: People, frozen_clock: FrozenClock
) -> None:
    acceptance = ok(request(client, people["ann"], frozen_clock, new_risk(client, 3, 4)), 201)
    other = new_risk(client)
    before = row_counts(engine)
    assert_problem(decide(client, acceptance, "approve", people["bob"]), 403)  # above the appetite: not an admin
    assert_problem(decide(client, acceptance, "approve", keys.headers("read")), 403)
    assert_problem(request(client, keys.headers("read"), frozen_clock, other), 403)
    assert_problem(decide(client, acceptance, "approve", {**people["carol"], "If-Match": '"7"'}), 412)
    assert row_counts(engine) == before
    assert ok(decide(client, acceptance, "approve", {**people["carol"], "If-Match": '"1"'}))["version"] == 2
    assert_problem(client.get("/api/v1/acceptances/A-9999"), 404)
    assert_problem(client.get("/api/v1/acceptances/nonsense"), 404)
