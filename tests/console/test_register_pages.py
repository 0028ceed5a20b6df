"""The register's pages in process, as a browser uses them: the list's filters and pages, logging a risk, a risk's
page and its forms, editing against the ETag, and who may change what."""

import html
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
from fastapi.testclient import TestClient

from riskops.apikeys.models import Role
from tests.console.conftest import Signed
from tests.helpers import risk_body

# An acceptance lasts at most RISKOPS_ACCEPTANCE_MAX_DAYS (365 by default): half a year from today.
ACCEPTED_UNTIL = (datetime.now(UTC) + timedelta(days=180)).date().isoformat()

SignedFactory = Callable[..., Signed]


class FormReader(HTMLParser):
    """The fields a form would send as the page stands: inputs (checked boxes only), selected options, textareas."""

    def __init__(self, action: str):
        super().__init__()
        self.action, self.inside = action, False
        self.fields: dict[str, str] = {}
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = found.get("action") == self.action
        if not self.inside or "name" not in found and tag != "option":
            return
        if tag == "input" and (found.get("type") != "checkbox" or "checked" in found):
            self.fields[found["name"]] = found.get("value", "")
        elif tag == "select":
            self.select = found["name"]
            self.fields.setdefault(self.select, "")
        elif tag == "option" and self.select and "selected" in found:
            self.fields[self.select] = found.get("value", "")
        elif tag == "textarea":
            self.textarea = found["name"]
            self.fields[self.textarea] = ""

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.fields[self.textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def form_fields(page: str, action: str) -> dict[str, str]:
    reader = FormReader(action)
    reader.feed(page)
    assert reader.fields, f"no form posting to {action}"
    return reader.fields


def references(page: str) -> set[str]:
    """The risks a list page shows (each row links its reference)."""
    return set(re.findall(r'<a href="/console/risks/(R-\d{4})">', page))


def add_risk(client: TestClient, **overrides: Any) -> str:
    answer = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert answer.status_code == 201, answer.text
    reference: str = answer.json()["reference"]
    return reference


def risk(client: TestClient, ref: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/risks/{ref}")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def location(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text[:2000]
    return answer.headers["location"]


# ---- the list ----


def test_the_filters_select_the_risks_the_api_would(client: TestClient, signed: SignedFactory) -> None:
    flood = add_risk(client, title="Flooded basement", category="Facilities", owner="ana", tags=["water"])
    breach = add_risk(
        client, title="Customer data breach", category="security", owner="ben", tags=["gdpr", "cloud"],
        inherent={"likelihood": 5, "impact": 5}, residual=None, treatment="transfer", description="Leak",
    )  # fmt: skip
    fraud = add_risk(
        client, title="Invoice fraud", category="financial", owner="ana", tags=["payments"], description=""
    )
    closed = add_risk(client, title="Old flood plan", category="facilities", owner="ana")
    assert client.post(f"/api/v1/risks/{closed}/close", json={"reason": "moved out"}).status_code == 200
    reader = signed(Role.read)

    def listed(query: str) -> set[str]:
        answer = reader.client.get(f"/console/risks?{query}")
        assert answer.status_code == 200, answer.text[:2000]
        return references(answer.text)

    assert listed("") == {flood, breach, fraud, closed}
    assert listed("status=open") == {flood, breach, fraud}
    assert listed("category=FACILITIES&status=open") == {flood}  # any case, and both filters at once
    assert listed("category=facilities") == {flood, closed}
    assert listed("owner=ana&owner=ben&treatment=mitigate") == {flood, fraud, closed}
    assert listed("level=critical") == {breach}
    assert listed("tag=gdpr&tag=payments") == {breach, fraud}
    assert listed("q=FLOOD") == {flood, closed}  # the text search, in any case
    assert listed("q=flood&status=closed") == {closed}
    assert listed("overdue=true") == set()
    page = reader.client.get("/console/risks?category=facilities&q=flood").text
    # The form shows the filters as chosen, and the exports carry them.
    assert 'name="category" value="facilities"' in page and 'value="flood"' in page
    export = html.unescape(re.search(r'href="(/api/v1/risks/export\?format=csv[^"]*)"', page).group(1))  # type: ignore[union-attr]
    assert "category=facilities" in export and "q=flood" in export
    csv = reader.client.get(export)  # the API takes the session cookie on a GET
    assert csv.status_code == 200 and "Flooded basement" in csv.text and "Invoice fraud" not in csv.text


def test_a_refused_filter_is_shown_in_the_apis_words(signed: SignedFactory) -> None:
    reader = signed(Role.read)
    short = reader.client.get("/console/risks?q=ab")
    assert short.status_code == 422
    assert "query.q: String should have at least 3 characters" in short.text
    unknown = reader.client.get("/console/risks?level=catastrophic")
    assert unknown.status_code == 422
    assert "unknown level &#39;catastrophic&#39;; allowed: low, medium, high, critical" in unknown.text


def test_the_list_pages_with_the_apis_cursor(client: TestClient, signed: SignedFactory) -> None:
    made = [add_risk(client, title=f"Paged risk {n}", tags=["paged"]) for n in range(52)]
    other = add_risk(client, title="Not paged", tags=["other"])
    reader = signed(Role.read)
    first = reader.client.get("/console/risks?tag=paged&sort=id")
    assert references(first.text) == set(made[:50])
    following = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert following is not None
    second = reader.client.get(html.unescape(following.group(1)))
    assert second.status_code == 200
    assert references(second.text) == set(made[50:]) and other not in second.text
    assert 'rel="next"' not in second.text and "First page" in second.text


def test_the_list_shows_levels_by_name_and_no_write_link_to_readers(client: TestClient, signed: SignedFactory) -> None:
    add_risk(client, inherent={"likelihood": 5, "impact": 5}, residual=None)
    reader, writer = signed(Role.read), signed(Role.write)
    page = reader.client.get("/console/risks").text
    assert re.search(r'<span class="badge" style="background:#c62828;color:#[0-9a-f]{6}">critical</span>', page)
    assert "Log a new risk" not in page
    assert 'href="/console/risks/new"' in writer.client.get("/console/risks").text


def test_a_title_is_text_on_the_list_and_the_risk_page(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client, title="<script>alert(1)</script>", owner="<b>bold</b>")
    reader = signed(Role.read)
    for url in ("/console/risks", f"/console/risks/{ref}"):
        page = reader.client.get(url).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;bold&lt;/b&gt;" in page
        assert "<script>alert" not in page and "<b>bold" not in page


# ---- logging a risk ----


def test_the_new_risk_form_previews_with_the_domains_scores(client: TestClient, signed: SignedFactory) -> None:
    add_risk(client, category="Supply chain")
    writer = signed(Role.write, email="owner.one@example.org")
    page = writer.client.get("/console/risks/new")
    assert page.status_code == 200
    block = re.search(r'<script type="application/json" id="score-table">(.*?)</script>', page.text, re.S)
    assert block is not None
    table = json.loads(html.unescape(block.group(1)))
    assert len(table) == 25
    assert table["5,5"] == {"score": 25, "level": "critical", "color": "#c62828", "text": "#ffffff"}
    assert table["1,1"]["level"] == "low" and table["2,3"] == {**table["2,3"], "score": 6, "level": "medium"}
    assert 'data-score-table="score-table"' in page.text and 'data-score-output="inherent."' in page.text
    assert '<option value="owner.one@example.org">' in page.text  # the owner field suggests the users
    assert '<option value="Supply chain">' in page.text  # and the category field the categories in use


def test_logging_a_risk_goes_to_its_page(client: TestClient, signed: SignedFactory) -> None:
    writer = signed(Role.write)
    answer = writer.post(
        "/console/risks/new",
        {
            "title": "Warehouse fire", "description": "Line one\r\nline two", "category": "operational",
            "owner": "ana@example.org", "tags": "Fire, warehouse", "inherent.likelihood": "3",
            "inherent.impact": "5", "residual.likelihood": "2", "residual.impact": "3", "treatment": "mitigate",
            "next_review_at": "2031-02-03", "rationale": "",
        },
    )  # fmt: skip
    assert location(answer) == "/console/risks/R-0001"
    stored = risk(client, "R-0001")
    assert stored["title"] == "Warehouse fire" and stored["description"] == "Line one\nline two"
    assert stored["tags"] == ["fire", "warehouse"] and stored["owner"] == "ana@example.org"
    assert stored["inherent"] == {"likelihood": 3, "impact": 5, "score": 15, "level": "high", "impacts": None}
    assert stored["residual"]["level"] == "medium" and stored["level"] == "medium"
    assert stored["next_review_at"].startswith("2031-02-03") and stored["next_review_set_by_hand"]
    page = writer.client.get(location(answer))
    assert page.status_code == 200 and "Warehouse fire" in page.text
    assert ">medium</span>" in page.text and writer.email in page.text  # the level, and the history's who


def test_a_refused_new_risk_keeps_what_was_typed(client: TestClient, signed: SignedFactory) -> None:
    writer = signed(Role.write)
    typed = {
        "title": "", "description": "Typed <text> stays", "category": "operational", "owner": "ana",
        "inherent.likelihood": "3", "inherent.impact": "5", "treatment": "mitigate",
    }  # fmt: skip
    missing = writer.post("/console/risks/new", typed)
    assert missing.status_code == 422
    assert "Invalid request: body.title: Field required" in missing.text
    assert 'id="e-title">Field required</p>' in missing.text  # next to the field
    assert "Typed &lt;text&gt; stays</textarea>" in missing.text
    assert form_fields(missing.text, "/console/risks/new")["inherent.impact"] == "5"
    off_scale = writer.post("/console/risks/new", {**typed, "title": "Big one", "inherent.likelihood": "7"})
    assert off_scale.status_code == 422
    assert "inherent.likelihood: must be between 1 and 5 on the &#39;Default 5x5&#39; matrix" in off_scale.text
    assert 'id="e-inherent">' in off_scale.text and 'value="Big one"' in off_scale.text
    above = writer.post(
        "/console/risks/new",
        {**typed, "title": "Accepted", "treatment": "accept", "acceptance.approver": "cfo",
         "acceptance.expires_at": ACCEPTED_UNTIL},
    )  # fmt: skip
    assert above.status_code == 403 and "above the risk appetite" in above.text
    assert client.get("/api/v1/risks").json()["items"] == []


# ---- a risk's page ----


def test_the_risk_page_shows_its_story(client: TestClient, signed: SignedFactory, playbooks: object) -> None:
    ref = add_risk(client, category="technology")
    assert client.post(
        f"/api/v1/risks/{ref}/assessments",
        json={"inherent": {"likelihood": 5, "impact": 5}, "residual": {"likelihood": 4, "impact": 4},
              "rationale": "Worse than we thought"},
    ).status_code == 201  # fmt: skip
    incident = client.post("/api/v1/incidents", json={"title": "Server room flooded", "severity": "SEV2",
                                                      "risk_ids": [ref]})  # fmt: skip
    assert incident.status_code == 201, incident.text
    reader = signed(Role.read)
    page = reader.client.get(f"/console/risks/{ref}").text
    assert '<svg class="chart" role="img" aria-labelledby="score-chart-title score-chart-desc"' in page
    assert f"Score of {ref} over time</title>" in page and page.count("<circle") == 2
    assert "Worse than we thought" in page and "Date of the assessment" in page
    assert f'href="/console/incidents/{incident.json()["id"]}"' in page and "Server room flooded" in page
    assert 'href="/console/playbooks/core-service-outage"' in page  # answers the category technology
    assert "Activate playbook" not in page  # a reader may not
    assert "assessed" in page and "inherent_score" in page  # the history: what changed
    writer = signed(Role.write)
    written = writer.client.get(f"/console/risks/R-{int(ref[2:])}").text  # a reference without its zeros
    assert f'href="/console/playbooks/core-service-outage/activate?risk={ref}"' in written


def test_reassessing_closing_and_reopening(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client)
    writer = signed(Role.write)
    page = writer.client.get(f"/console/risks/{ref}").text
    fields = form_fields(page, f"/console/risks/{ref}/assessments")
    assert fields["inherent.likelihood"] == "3" and fields["residual.impact"] == "4" and fields["etag"] == '"1"'
    blank = writer.post(f"/console/risks/{ref}/assessments", {**fields, "inherent.impact": "2"})
    assert blank.status_code == 422 and "body.rationale: Field required" in blank.text
    assert form_fields(blank.text, f"/console/risks/{ref}/assessments")["inherent.impact"] == "2"  # as typed
    done = writer.post(f"/console/risks/{ref}/assessments", {**fields, "residual.likelihood": "1",
                                                               "rationale": "Controls work"})  # fmt: skip
    assert location(done) == f"/console/risks/{ref}#ratings"
    assert risk(client, ref)["residual"]["score"] == 4
    stale = writer.post(f"/console/risks/{ref}/close", {"reason": "gone", "etag": '"1"'})
    assert stale.status_code == 412 and "has changed since you read it" in stale.text
    assert risk(client, ref)["status"] == "open"
    page = writer.client.get(f"/console/risks/{ref}").text
    closing = form_fields(page, f"/console/risks/{ref}/close")
    assert location(writer.post(f"/console/risks/{ref}/close", {**closing, "reason": "Site sold"}))
    assert risk(client, ref)["closure_reason"] == "Site sold"
    closed_page = writer.client.get(f"/console/risks/{ref}").text
    assert "Edit the risk" not in closed_page and "Reassess the risk" not in closed_page
    reopening = form_fields(closed_page, f"/console/risks/{ref}/reopen")
    assert location(writer.post(f"/console/risks/{ref}/reopen", {**reopening, "reason": "Bought back"}))
    assert risk(client, ref)["status"] == "open"


def test_controls_are_added_and_edited(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client)
    writer = signed(Role.write)
    refused = writer.post(f"/console/risks/{ref}/controls", {"title": "", "owner": "ana", "status": "planned"})
    assert refused.status_code == 422 and "body.title: Field required" in refused.text
    assert 'id="control-new-owner" name="owner" type="text" value="ana"' in refused.text
    added = writer.post(
        f"/console/risks/{ref}/controls",
        {"title": "Flood barriers", "owner": "facilities", "status": "planned", "due_date": "2030-05-01"},
    )
    assert location(added) == f"/console/risks/{ref}#controls"
    [control] = risk(client, ref)["controls"]
    assert control["title"] == "Flood barriers" and control["due_date"] == "2030-05-01"
    page = writer.client.get(f"/console/risks/{ref}").text
    url = f"/console/risks/{ref}/controls/{control['id']}"
    fields = form_fields(page, url)
    assert fields == {"csrf_token": writer.csrf, "title": "Flood barriers", "owner": "facilities",
                      "due_date": "2030-05-01", "status": "planned"}  # fmt: skip
    assert location(writer.post(url, {**fields, "status": "implemented", "due_date": ""}))
    [control] = risk(client, ref)["controls"]
    assert control["status"] == "implemented" and control["due_date"] is None
    wrong = writer.post(url, {**fields, "status": "finished"})
    assert wrong.status_code == 422 and "body.status: Input should be" in wrong.text


# ---- editing with the ETag ----


def test_an_edit_saves_the_changed_fields(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client, description="Keep\nthis")
    writer = signed(Role.write)
    page = writer.client.get(f"/console/risks/{ref}/edit")
    assert page.status_code == 200
    fields = form_fields(page.text, f"/console/risks/{ref}/edit")
    assert fields["etag"] == '"1"' and fields["was.title"] == fields["title"] and fields["next_review_at"] == ""
    sent = {**fields, "owner": "new owner", "tags": "dc, new", "description": "Keep\r\nthis"}  # as a browser sends
    assert location(writer.post(f"/console/risks/{ref}/edit", sent)) == f"/console/risks/{ref}"
    stored = risk(client, ref)
    assert stored["owner"] == "new owner" and stored["tags"] == ["dc", "new"] and stored["version"] == 2
    assert not stored["next_review_set_by_hand"]  # untouched: not sent
    history = client.get(f"/api/v1/risks/{ref}/history").json()["items"]
    assert history[-1]["actor"] == writer.email and set(history[-1]["changes"]) == {"owner", "tags"}
    fields = form_fields(writer.client.get(f"/console/risks/{ref}/edit").text, f"/console/risks/{ref}/edit")
    refused = writer.post(f"/console/risks/{ref}/edit", {**fields, "title": "", "category": "risky"})
    assert refused.status_code == 422 and "body.title: String should have at least 1 character" in refused.text
    assert form_fields(refused.text, f"/console/risks/{ref}/edit")["category"] == "risky"
    assert risk(client, ref)["version"] == 2


def test_a_conflicting_edit_loses_nothing(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client, title="Original title")
    first, second = signed(Role.write), signed(Role.write)
    url = f"/console/risks/{ref}/edit"
    first_form = form_fields(first.client.get(url).text, url)
    second_form = form_fields(second.client.get(url).text, url)
    assert location(first.post(url, {**first_form, "title": "Title by the first"}))
    conflict = second.post(url, {**second_form, "owner": "owner by the second"})
    assert conflict.status_code == 412
    assert "Changed by someone else" in conflict.text
    assert f"Risk {ref} has changed since you read it (now version 2)" in conflict.text
    assert "Title by the first" in conflict.text and "owner by the second" in conflict.text
    again = form_fields(conflict.text, url)
    # The form holds the saved version with the second person's change over it, and the new ETag.
    assert again["title"] == "Title by the first" and again["owner"] == "owner by the second"
    assert again["etag"] == '"2"' and again["was.owner"] == "head of infrastructure"
    assert risk(client, ref)["owner"] == "head of infrastructure"
    assert location(second.post(url, again)) == f"/console/risks/{ref}"
    stored = risk(client, ref)
    assert stored["title"] == "Title by the first" and stored["owner"] == "owner by the second"


# ---- who may ----


def test_a_reader_sees_no_write_controls_and_is_refused(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client)
    reader = signed(Role.read)
    page = reader.client.get(f"/console/risks/{ref}").text
    assert "Edit the risk" not in page and "Add a control" not in page and "Reassess the risk" not in page
    assert 'method="post"' not in page.replace('<form method="post" action="/console/sign-out"', "")
    for url, data in (
        ("/console/risks/new", {"title": "Nope"}),
        (f"/console/risks/{ref}/edit", {"title": "Nope", "was.title": "x"}),
        (f"/console/risks/{ref}/controls", {"title": "Nope", "owner": "x"}),
        (f"/console/risks/{ref}/close", {"reason": "Nope"}),
    ):
        refused = reader.post(url, data)
        assert refused.status_code == 403, url
    assert reader.client.get(f"/console/risks/{ref}/edit").status_code == 403
    assert risk(client, ref)["version"] == 1 and len(client.get("/api/v1/risks").json()["items"]) == 1


def test_a_post_without_the_csrf_token_changes_nothing(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client)
    writer = signed(Role.write)
    fields = form_fields(writer.client.get(f"/console/risks/{ref}/edit").text, f"/console/risks/{ref}/edit")
    del fields["csrf_token"]
    refused = writer.client.post(f"/console/risks/{ref}/edit", data={**fields, "title": "Forged"})
    assert refused.status_code == 403
    created = writer.client.post(
        "/console/risks/new",
        data={"title": "Forged", "category": "x", "owner": "y", "inherent.likelihood": "1", "inherent.impact": "1"},
    )
    assert created.status_code == 403
    assert risk(client, ref)["title"] != "Forged" and len(client.get("/api/v1/risks").json()["items"]) == 1


def test_acceptance_and_review_day_round_trip_through_the_edit_form(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client, inherent={"likelihood": 1, "impact": 2}, residual=None)
    writer = signed(Role.write)
    url = f"/console/risks/{ref}/edit"
    fields = form_fields(writer.client.get(url).text, url)
    accepted = {**fields, "treatment": "accept", "acceptance.approver": "cfo", "acceptance.expires_at": ACCEPTED_UNTIL,
                "next_review_at": "2030-06-15"}  # fmt: skip
    assert location(writer.post(url, accepted))
    stored = risk(client, ref)
    assert stored["acceptance"]["approver"] == "cfo"
    assert stored["acceptance"]["expires_at"].startswith(f"{ACCEPTED_UNTIL}T23")
    assert stored["next_review_at"] == "2030-06-15T00:00:00Z" and stored["next_review_set_by_hand"]  # the user's UTC
    fields = form_fields(writer.client.get(url).text, url)
    assert fields["acceptance.expires_at"] == ACCEPTED_UNTIL and fields["next_review_at"] == "2030-06-15"
    assert location(writer.post(url, fields))  # saved as read: nothing to change
    assert risk(client, ref)["version"] == stored["version"]
    assert location(writer.post(url, {**fields, "next_review_at": ""}))  # cleared: back to the level's interval
    assert not risk(client, ref)["next_review_set_by_hand"]


def test_the_pages_speak_the_readers_language(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client)
    reader = signed(Role.read, language="zh-CN")
    listed = reader.client.get("/console/risks").text
    assert "<h1>风险登记册</h1>" in listed and "降低" in listed and "Primary data centre flooded" in listed
    page = reader.client.get(f"/console/risks/{int(ref[2:])}").text  # by its id
    assert f"{ref} 的分值变化</title>" in page and "变更历史" in page
    missing = reader.client.get("/console/risks/R-9999")
    assert missing.status_code == 404 and "Risk 9999 does not exist." in missing.text
