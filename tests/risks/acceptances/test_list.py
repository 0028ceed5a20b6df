"""Who accepted what, until when, on whose approval: the acceptance list's filters, pages, one acceptance and its
history, over HTTP."""

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import FrozenClock
from tests.helpers import assert_problem
from tests.risks.acceptances.flows import People, approved, decide, new_risk, ok, request


def _refs(client: TestClient, **params: Any) -> list[str]:
    return [a["reference"] for a in ok(client.get("/api/v1/acceptances", params=params))["items"]]


def test_the_list_answers_who_accepted_what_until_when_on_whose_approval(
    client: TestClient, people: People, frozen_clock: FrozenClock
) -> None:
    cyber, ops = new_risk(client, category="Cyber"), new_risk(client, category="ops")
    soon = approved(client, frozen_clock, people, cyber, days=20)  # ann asked, carol approved
    later = ok(request(client, people["bob"], frozen_clock, ops, days=200), 201)
    later = ok(decide(client, later, "approve", people["ann"]))
    waiting = ok(request(client, people["ann"], frozen_clock, new_risk(client, title="Waiting")), 201)
    a, b, c = soon["reference"], later["reference"], waiting["reference"]

    assert _refs(client) == [c, b, a]  # newest first
    (item,) = ok(client.get("/api/v1/acceptances", params={"risk": cyber["reference"]}))["items"]
    assert (item["reference"], item["risks"], item["requested_by"], item["approved_by"]) == (
        a, [cyber["reference"]], "ann", ["carol"]
    )  # fmt: skip
    assert item["expires_at"] == soon["expires_at"] and item["status"] == "approved"
    assert _refs(client, status="requested") == [c]
    assert _refs(client, status=["approved", "rejected"]) == [b, a]
    assert _refs(client, category="CYBER") == [a]
    until = (frozen_clock.now + timedelta(days=30)).isoformat()
    assert _refs(client, expiring_before=until, status="approved") == [a]
    assert _refs(client, requested_by="BOB") == [b]
    assert _refs(client, approved_by="ann") == [b]
    assert _refs(client, needs_reapproval=False) == [c, b, a]
    assert _refs(client, risk="R-9999") == []

    first = ok(client.get("/api/v1/acceptances", params={"limit": 2}))
    assert [i["reference"] for i in first["items"]] == [c, b]
    rest = ok(client.get("/api/v1/acceptances", params={"limit": 2, "cursor": first["next_cursor"]}))
    assert [i["reference"] for i in rest["items"]] == [a] and rest["next_cursor"] is None

    assert_problem(client.get("/api/v1/acceptances", params={"status": "pending"}), 422, "query.status.0")
    assert_problem(client.get("/api/v1/acceptances", params={"expiring_before": "tomorrow"}), 422)
    assert_problem(client.get("/api/v1/acceptances", params={"cursor": "!!"}), 422, "query.cursor")
    assert_problem(client.get("/api/v1/acceptances", params={"risk": "nonsense"}), 404)


def test_an_acceptance_shows_its_decisions_and_history(
    client: TestClient, people: People, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client)
    acceptance = approved(client, frozen_clock, people, risk)
    response = client.get(f"/api/v1/acceptances/{acceptance['reference'].lower()}")
    shown = ok(response)
    assert shown == acceptance and response.headers["ETag"] == f'"{shown["version"]}"'
    assert ok(client.get(f"/api/v1/acceptances/{shown['reference'].removeprefix('ACC-')}")) == shown
    ok(decide(client, acceptance, "revoke", people["carol"], "Treated after all"))
    history = ok(client.get(f"/api/v1/acceptances/{acceptance['reference']}/history"))["items"]
    assert [(h["action"], h["actor"]) for h in history] == [("requested", "ann"), ("approved", "carol"),
                                                             ("revoked", "carol")]  # fmt: skip
    assert history[0]["note"] == "Cheaper to carry than to treat"
    assert history[1]["changes"]["status"] == {"old": "requested", "new": "approved"}
    assert history[2]["note"] == "Treated after all"
    page = ok(client.get(f"/api/v1/acceptances/{acceptance['reference']}/history", params={"limit": 1}))
    assert len(page["items"]) == 1 and page["next_cursor"]
    assert_problem(client.get("/api/v1/acceptances/ACC-0099/history"), 404)
