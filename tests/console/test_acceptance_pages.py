"""Acceptances in the console: requested from a risk's page, listed and filtered, and decided on their page (approve,
reject, revoke, extend) with four eyes, the admin above the appetite and two approvals beyond the tolerance
enforced by the service and shown in its words; each decision's state of the risks kept on the page."""

import re
from datetime import UTC, datetime, timedelta

import httpx
from fastapi.testclient import TestClient

from riskops.apikeys.models import Role
from tests.conftest import Keys
from tests.console.conftest import Signed
from tests.console.test_register_pages import SignedFactory, add_risk, form_fields, location, risk

UNTIL = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
LATER = (datetime.now(UTC) + timedelta(days=200)).date().isoformat()


def request_on_page(writer: Signed, ref: str, **typed: str) -> httpx.Response:
    """The risk page's "Request an acceptance" form, sent."""
    body = {"justification": "Cheaper to carry than to treat", "expires_at": UNTIL, **typed}
    return writer.post(f"/console/risks/{ref}/acceptances", body)


def decision_form(page: str, url: str) -> dict[str, str]:
    """The fields of the page's form posting to url, but its CSRF token: whoever posts sends their own."""
    found = re.search(rf'<form method="post" action="{re.escape(url)}".*?</form>', page, re.S)
    assert found, f"no form posting to {url}"
    return {k: v for k, v in form_fields(found.group(0), url).items() if k != "csrf_token"}


def acceptance(client: TestClient, ref: str) -> dict[str, object]:
    answer = client.get(f"/api/v1/acceptances/{ref}")
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_a_request_from_the_risk_page_is_approved_by_someone_else(client: TestClient, signed: SignedFactory) -> None:
    low = add_risk(client, inherent={"likelihood": 1, "impact": 2}, residual=None, treatment="transfer")
    other = add_risk(client, inherent={"likelihood": 2, "impact": 2}, residual=None)
    ann, bob = signed(Role.write), signed(Role.write)
    page = ann.client.get(f"/console/risks/{low}").text
    assert "No acceptance has been requested for this risk." in page
    assert form_fields(page, f"/console/risks/{low}/acceptances").keys() >= {"justification", "expires_at", "risks"}
    made = request_on_page(ann, low, risks=f" {other} ", conditions="Insurance renewed")
    assert location(made) == "/console/acceptances/ACC-0001"
    stored = acceptance(client, "ACC-0001")
    assert stored["risks"] == [low, other] and stored["requested_by"] == ann.email and stored["status"] == "requested"
    shown = ann.client.get("/console/acceptances/ACC-0001").text
    assert "<h1>ACC-0001: requested</h1>" in shown and "Insurance renewed" in shown
    assert "You requested this acceptance: someone else must approve it (four eyes)." in shown
    assert "the approval of anyone but the requester; given so far: 0" in shown
    url = "/console/acceptances/ACC-0001/approve"
    mine = ann.post(url, decision_form(shown, url))
    assert mine.status_code == 403 and "Four eyes: whoever requested an acceptance cannot approve it." in mine.text
    assert acceptance(client, "ACC-0001")["status"] == "requested"
    theirs = bob.client.get("/console/acceptances/ACC-0001").text
    assert "You requested this acceptance" not in theirs
    assert (
        location(bob.post(url, {**decision_form(theirs, url), "comment": "Within appetite"}))
        == "/console/acceptances/ACC-0001"
    )
    approved = acceptance(client, "ACC-0001")
    assert approved["status"] == "approved" and approved["approved_by"] == [bob.email]
    assert risk(client, low)["treatment"] == "accept" and risk(client, low)["acceptance"]["approver"] == bob.email
    shown = bob.client.get("/console/acceptances/ACC-0001").text
    # Each covered risk as it stood at the request and at the approval, and the decision itself.
    covered = shown.split('id="covered"')[1].split("</section>")[0]
    assert covered.count("<td>request</td>") == 2 and covered.count(f"<td>approval ({bob.email})</td>") == 2
    assert "Accepted now" in covered and "Treatment when it ends: transfer" in covered
    assert "Within appetite" in shown.split('id="decisions"')[1]
    assert 'action="/console/acceptances/ACC-0001/approve"' not in shown  # decided
    risk_page = bob.client.get(f"/console/risks/{low}").text.split('id="acceptances"')[1].split("</section>")[0]
    assert '<a href="/console/acceptances/ACC-0001">ACC-0001</a>' in risk_page and bob.email in risk_page


def test_the_appetite_rules_are_the_services_in_its_words(
    client: TestClient, signed: SignedFactory, keys: Keys
) -> None:
    limits = {"appetite": "medium", "tolerance": "high"}
    assert client.put("/api/v1/appetite/cyber", json=limits, headers=keys.headers("admin")).status_code == 200
    high = add_risk(client, category="cyber", inherent={"likelihood": 3, "impact": 4}, residual=None)
    critical = add_risk(client, category="cyber", inherent={"likelihood": 5, "impact": 5}, residual=None)
    ann, bob, carol = signed(Role.write), signed(Role.write), signed(Role.admin)
    assert location(request_on_page(ann, high)) == "/console/acceptances/ACC-0001"
    url = "/console/acceptances/ACC-0001/approve"
    page = bob.client.get("/console/acceptances/ACC-0001").text
    assert "an admin&#39;s approval (a risk is above its category&#39;s appetite)" in page
    refused = bob.post(url, decision_form(page, url))
    assert refused.status_code == 403
    assert "ACC-0001 covers a risk above its category&#39;s appetite; only an admin may approve it." in refused.text
    assert location(carol.post(url, decision_form(carol.client.get("/console/acceptances/ACC-0001").text, url)))
    assert acceptance(client, "ACC-0001")["status"] == "approved"
    # Beyond the tolerance: two people, one an admin; the first approval leaves it requested.
    assert location(request_on_page(ann, critical)) == "/console/acceptances/ACC-0002"
    url = "/console/acceptances/ACC-0002/approve"
    page = bob.client.get("/console/acceptances/ACC-0002").text
    assert "two approvals by two people other than the requester, one of them an admin" in page
    assert location(bob.post(url, decision_form(page, url)))
    page = bob.client.get("/console/acceptances/ACC-0002").text
    assert "given so far: 1" in page and "<h1>ACC-0002: requested</h1>" in page
    again = bob.post(url, decision_form(page, url))
    assert again.status_code == 403 and "You approved ACC-0002 already" in again.text
    assert location(carol.post(url, decision_form(page, url)))
    assert acceptance(client, "ACC-0002")["approved_by"] == [bob.email, carol.email]


def test_rejecting_revoking_and_the_expiry_cap(client: TestClient, signed: SignedFactory, keys: Keys) -> None:
    ref = add_risk(client, inherent={"likelihood": 1, "impact": 2}, residual=None)
    ann, bob, carol = signed(Role.write), signed(Role.write), signed(Role.admin)
    capped = request_on_page(ann, ref, expires_at=(datetime.now(UTC) + timedelta(days=400)).date().isoformat())
    assert capped.status_code == 422 and 'id="e-expires_at"' in capped.text
    assert re.search(r"<details open>\s*<summary>Request an acceptance</summary>", capped.text)
    assert (
        form_fields(capped.text, f"/console/risks/{ref}/acceptances")["justification"]
        == "Cheaper to carry than to treat"
    )
    assert client.get("/api/v1/acceptances").json()["items"] == []
    assert location(request_on_page(ann, ref))
    page = bob.client.get("/console/acceptances/ACC-0001").text
    url = "/console/acceptances/ACC-0001/reject"
    blank = bob.post(url, decision_form(page, url))
    assert blank.status_code == 422 and '<p class="field-error" id="reject-error">Field required</p>' in blank.text
    assert location(bob.post(url, {**decision_form(page, url), "comment": "Treat it: the fix is cheap"}))
    assert acceptance(client, "ACC-0001")["status"] == "rejected"
    # In force, then revoked: only an admin or an approver may.
    assert location(request_on_page(ann, ref))
    approve = "/console/acceptances/ACC-0002/approve"
    assert location(bob.post(approve, decision_form(bob.client.get("/console/acceptances/ACC-0002").text, approve)))
    dave = signed(Role.write)
    page = dave.client.get("/console/acceptances/ACC-0002").text
    assert 'action="/console/acceptances/ACC-0002/revoke"' not in page  # neither an admin nor an approver
    revoke = "/console/acceptances/ACC-0002/revoke"
    etag = form_fields(page, "/console/acceptances/ACC-0002/extend")["etag"]
    refused = dave.post(revoke, {"comment": "No", "etag": etag})
    assert refused.status_code == 403 and "Only an admin or an approver of ACC-0002 may revoke it." in refused.text
    page = carol.client.get("/console/acceptances/ACC-0002").text
    stale = carol.post(revoke, {**decision_form(page, revoke), "comment": "Stalled", "etag": '"1"'})
    assert stale.status_code == 412 and "Acceptance ACC-0002 has changed since you read it" in stale.text
    assert location(carol.post(revoke, {**decision_form(page, revoke), "comment": "MFA rollout stalled"}))
    assert acceptance(client, "ACC-0002")["status"] == "revoked"
    assert risk(client, ref)["treatment"] == "mitigate" and risk(client, ref)["acceptance"] is None


def test_the_list_filters_and_an_acceptance_needing_reapproval_is_extended(
    client: TestClient, signed: SignedFactory
) -> None:
    one = add_risk(client, inherent={"likelihood": 1, "impact": 2}, residual=None)
    two = add_risk(client, inherent={"likelihood": 1, "impact": 1}, residual=None)
    ann, bob = signed(Role.write), signed(Role.write)
    for ref in (one, two):
        assert location(request_on_page(ann, ref))
    approve = "/console/acceptances/ACC-0001/approve"
    assert location(bob.post(approve, decision_form(bob.client.get("/console/acceptances/ACC-0001").text, approve)))
    raised = {"inherent": {"likelihood": 2, "impact": 3}, "rationale": "Worse"}
    assert client.post(f"/api/v1/risks/{one}/assessments", json=raised).status_code == 201
    reader = signed(Role.read)
    listed = reader.client.get("/console/acceptances").text
    assert 'aria-current="page">Acceptances</a>' in listed  # in the navigation
    assert listed.count('<a href="/console/acceptances/ACC-') == 2
    flagged = reader.client.get("/console/acceptances?needs_reapproval=true").text
    assert "ACC-0001" in flagged and "ACC-0002" not in flagged and "<strong>yes</strong>" in flagged
    assert "ACC-0001" not in reader.client.get("/console/acceptances?status=requested").text
    assert "ACC-0002" in reader.client.get(f"/console/acceptances?risk={two}").text
    wrong = reader.client.get("/console/acceptances?status=lost")
    assert wrong.status_code == 422 and "query.status.0: Input should be" in wrong.text
    page = ann.client.get("/console/acceptances/ACC-0001").text
    assert 'id="needs-reapproval"' in page and 'id="decide"' in page
    assert 'id="decide"' not in reader.client.get("/console/acceptances/ACC-0001").text  # a reader decides nothing
    extend = "/console/acceptances/ACC-0001/extend"
    fields = form_fields(page, extend)
    refused = ann.post(extend, {**fields, "expires_at": LATER})
    assert refused.status_code == 422 and "body.justification: Field required" in refused.text
    made = ann.post(extend, {**fields, "justification": "Re-approve after the rise", "expires_at": UNTIL})
    assert location(made) == "/console/acceptances/ACC-0003"
    assert acceptance(client, "ACC-0003")["extends"] == "ACC-0001"
    assert reader.post(extend, {**fields, "justification": "x", "expires_at": UNTIL}).status_code == 403


def test_acceptance_pages_are_text_safe_and_speak_chinese(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client, title="<b>Legacy VPN</b>", inherent={"likelihood": 1, "impact": 2}, residual=None)
    ann = signed(Role.write)
    assert location(request_on_page(ann, ref, justification="<script>alert(1)</script>"))
    page = signed(Role.read, language="zh-CN").client.get("/console/acceptances/ACC-0001").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "&lt;b&gt;Legacy VPN&lt;/b&gt;" in page and "涉及的风险" in page and "已申请" in page
    forged = ann.client.post("/console/acceptances/ACC-0001/reject", data={"comment": "no token"})
    assert forged.status_code == 403 and acceptance(client, "ACC-0001")["status"] == "requested"
