"""An acceptance in force and how it ends, over HTTP and the hand-cranked scheduler: revoked or expired (the risk
goes back to its plan and is to be reassessed), extended through approval, marked after a material change."""

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem
from tests.risks.acceptances.flows import People, approved, decide, events, new_risk, ok, request, risk_actions


def _tick_at(worker: Worker, clock: FrozenClock, moment: datetime, times: int = 2) -> None:
    clock.advance(moment - clock.now)
    for _ in range(times):
        report = worker.tick()
        assert -1 not in report.values(), report


def _types(client: TestClient, pattern: str, subject: str) -> list[str]:
    return [e["type"] for e in events(client, pattern, subject)]


def test_revoking_puts_the_plan_back_and_asks_for_reassessment(
    client: TestClient, keys: Keys, people: People, worker: Worker, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client, 3, 3, treatment="transfer")
    acceptance = ok(request(client, people["ann"], frozen_clock, risk), 201)
    acceptance = ok(decide(client, acceptance, "approve", people["bob"]))
    assert ok(client.get(f"/api/v1/risks/{risk['id']}"))["treatment"] == "accept"
    assert_problem(decide(client, acceptance, "revoke", people["ann"], "no"), 403)  # the requester, no approver
    assert_problem(decide(client, acceptance, "revoke", people["bob"]), 422, "body.comment")
    frozen_clock.advance(timedelta(days=3))
    revoked = ok(decide(client, acceptance, "revoke", people["bob"], "The insurer withdrew cover"))
    assert (revoked["status"], revoked["covered"][0]["in_force"]) == ("revoked", False)
    assert [d["kind"] for d in revoked["decisions"]] == ["approve", "revoke"]
    after = ok(client.get(f"/api/v1/risks/{risk['id']}"))
    assert (after["treatment"], after["acceptance"]) == ("transfer", None)  # back to its plan
    assert datetime.fromisoformat(after["next_review_at"]) == frozen_clock.now  # due for review now
    assert risk_actions(client, risk)[-2:] == ["acceptance_revoked", "reassessment_requested"]
    (asked,) = events(client, "risk.reassessment_requested", risk["reference"])
    assert asked["data"]["acceptance"] == acceptance["reference"]
    assert [e["data"]["comment"] for e in events(client, "acceptance.revoked")] == ["The insurer withdrew cover"]
    assert_problem(decide(client, acceptance, "revoke", people["carol"], "again"), 409)
    _tick_at(worker, frozen_clock, frozen_clock.now + timedelta(days=120))  # its expiry passes: nothing fires
    assert _types(client, "*acceptance*", acceptance["reference"]) == [
        "acceptance.requested", "acceptance.approved", "acceptance.revoked"
    ]  # fmt: skip
    other = approved(client, frozen_clock, people, new_risk(client))  # approved by carol; an admin revokes it
    assert ok(decide(client, other, "revoke", keys.headers("admin"), "Risk owner left"))["status"] == "revoked"


def test_an_acceptance_expires_at_its_time_exactly_once(
    client: TestClient, people: People, worker: Worker, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client)
    acceptance = approved(client, frozen_clock, people, risk, days=60)
    ref, expiry = acceptance["reference"], datetime.fromisoformat(acceptance["expires_at"])
    warning = expiry - timedelta(days=30)
    _tick_at(worker, frozen_clock, warning - timedelta(seconds=1))
    assert _types(client, "*expir*", ref) + _types(client, "*expir*", risk["reference"]) == []
    _tick_at(worker, frozen_clock, warning, times=3)
    assert _types(client, "acceptance.expiring", ref) == ["acceptance.expiring"]
    assert _types(client, "risk.acceptance_*", risk["reference"]) == ["risk.acceptance_expiring"]
    _tick_at(worker, frozen_clock, expiry, times=3)
    _tick_at(worker, frozen_clock, expiry + timedelta(days=40))
    assert _types(client, "acceptance.expir*", ref) == ["acceptance.expiring", "acceptance.expired"]
    assert _types(client, "risk.acceptance_*", risk["reference"]) == [
        "risk.acceptance_expiring", "risk.acceptance_expired"
    ]  # fmt: skip
    (ended,) = events(client, "risk.acceptance_expired", risk["reference"])
    assert datetime.fromisoformat(ended["data"]["acceptance_expires_at"]) == expiry
    expired = ok(client.get(f"/api/v1/acceptances/{ref}"))
    assert expired["status"] == "expired" and datetime.fromisoformat(expired["ended_at"]) == expiry
    after = ok(client.get(f"/api/v1/risks/{risk['id']}"))
    assert (after["treatment"], after["acceptance"]) == ("mitigate", None)
    assert risk_actions(client, risk)[-2:] == ["acceptance_expired", "reassessment_requested"]
    (asked,) = events(client, "risk.reassessment_requested", risk["reference"])
    assert asked["data"]["actor"] == "scheduler" and datetime.fromisoformat(asked["occurred_at"]) == expiry


def test_an_extension_goes_through_approval_while_the_acceptance_stays_in_force(
    client: TestClient, people: People, worker: Worker, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client, 3, 4, treatment="avoid")  # high: an admin approves
    old = approved(client, frozen_clock, people, risk, days=30)
    body: dict[str, Any] = {"justification": "Still waiting on the vendor's fix",
                            "expires_at": (frozen_clock.now + timedelta(days=200)).isoformat()}  # fmt: skip
    extend = f"/api/v1/acceptances/{old['reference']}/extend"
    too_long = {**body, "expires_at": (frozen_clock.now + timedelta(days=400)).isoformat()}
    assert_problem(client.post(extend, json=too_long, headers=people["ann"]), 422, "body.expires_at")
    response = client.post(extend, json=body, headers=people["ann"])
    new = ok(response, 201)
    assert response.headers["Location"] == f"/api/v1/acceptances/{new['reference']}"
    assert (new["status"], new["extends"], new["risks"]) == ("requested", old["reference"], [risk["reference"]])
    assert new["covered"][0]["treatment_before"] == "avoid"  # the plan carries over
    assert ok(client.get(f"/api/v1/acceptances/{old['reference']}"))["status"] == "approved"
    assert_problem(client.post(extend, json=body, headers=people["bob"]), 409)  # one extension waits at a time
    assert_problem(client.post(f"/api/v1/acceptances/{new['reference']}/extend", json=body), 409)  # not in force
    assert_problem(decide(client, new, "approve", people["bob"]), 403)  # high: an admin, as for any approval

    frozen_clock.advance(timedelta(days=1))
    extended = ok(decide(client, new, "approve", people["dave"]))
    assert extended["status"] == "approved"
    superseded = ok(client.get(f"/api/v1/acceptances/{old['reference']}"))
    assert superseded["status"] == "superseded" and not superseded["covered"][0]["in_force"]
    assert superseded["covered"][0]["released_reason"] == f"extended by {new['reference']}"
    assert [(d["kind"], d["decided_by"]) for d in superseded["decisions"]] == [("approve", "carol"),
                                                                              ("extend", "dave")]  # fmt: skip
    held = ok(client.get(f"/api/v1/risks/{risk['id']}"))
    assert (held["treatment"], held["acceptance"]["expires_at"]) == ("accept", new["expires_at"])
    _tick_at(worker, frozen_clock, datetime.fromisoformat(old["expires_at"]) + timedelta(days=1))
    assert _types(client, "acceptance.expired", old["reference"]) == []  # the old one's end no longer fires
    assert ok(client.get(f"/api/v1/risks/{risk['id']}"))["treatment"] == "accept"
    assert_problem(client.post(extend, json=body, headers=people["ann"]), 409)  # no longer in force
    rejected = ok(client.post(f"/api/v1/acceptances/{new['reference']}/extend", json=body, headers=people["ann"]), 201)
    ok(decide(client, rejected, "reject", people["carol"], "No more extensions"))
    assert ok(client.get(f"/api/v1/acceptances/{new['reference']}"))["status"] == "approved"  # still in force


def test_a_material_change_marks_the_acceptance_until_it_is_approved_anew(
    client: TestClient, keys: Keys, people: People, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client, 2, 2)  # low
    old = approved(client, frozen_clock, people, risk)
    change = {"inherent": {"likelihood": 3, "impact": 4}, "rationale": "Exploit published"}
    ok(client.post(f"/api/v1/risks/{risk['id']}/assessments", json=change), 201)
    flagged = ok(client.get(f"/api/v1/acceptances/{old['reference']}"))
    assert (flagged["status"], flagged["needs_reapproval"]) == ("approved", True)
    listed = ok(client.get("/api/v1/acceptances", params={"needs_reapproval": True}))["items"]
    assert [a["reference"] for a in listed] == [old["reference"]]
    # Approved anew: an extension with the same expiry, decided on the risk as it is now (high: an admin).
    body = {"justification": "Re-approved after the exploit", "expires_at": old["expires_at"]}
    again = ok(client.post(f"/api/v1/acceptances/{old['reference']}/extend", json=body, headers=people["ann"]), 201)
    assert again["approval"] == {"approvals": 1, "admin": True, "given": 0}
    assert_problem(decide(client, again, "approve", people["bob"]), 403)
    renewed = ok(decide(client, again, "approve", keys.headers("admin")))
    assert renewed["needs_reapproval"] is False and renewed["covered"][0]["states"][-1]["level"] == "high"
    in_force = {"needs_reapproval": True, "status": "approved"}  # the superseded one keeps its mark, as history
    assert ok(client.get("/api/v1/acceptances", params=in_force))["items"] == []


def test_closing_a_covered_risk_leaves_it_out_of_the_approval(
    client: TestClient, people: People, frozen_clock: FrozenClock
) -> None:
    kept, closed = new_risk(client, title="Kept"), new_risk(client, title="Closed")
    acceptance = ok(request(client, people["ann"], frozen_clock, kept, closed), 201)
    ok(client.post(f"/api/v1/risks/{closed['id']}/close", json={"reason": "Site sold"}))
    decided = ok(decide(client, acceptance, "approve", people["bob"]))
    assert [(c["risk"], c["in_force"]) for c in decided["covered"]] == [(kept["reference"], True),
                                                                       (closed["reference"], False)]  # fmt: skip
    assert decided["covered"][1]["released_reason"] == "closed before the approval"
    assert ok(client.get(f"/api/v1/risks/{closed['id']}"))["treatment"] == "mitigate"
    gone = new_risk(client, title="Gone")
    alone = ok(request(client, people["ann"], frozen_clock, gone), 201)
    ok(client.post(f"/api/v1/risks/{gone['id']}/close", json={"reason": "Gone"}))
    assert_problem(decide(client, alone, "approve", people["bob"]), 409)  # nothing left to accept
    assert ok(decide(client, alone, "reject", people["bob"], "Closed meanwhile"))["status"] == "rejected"
