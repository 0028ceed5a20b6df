"""The richer risk model on the register's pages: the statement, type, source, objectives, impacts per dimension,
the target and where the risk stands against its category's appetite; logging and editing them through the forms;
and the processes and assets a risk threatens."""

import re

from fastapi.testclient import TestClient

from riskops.apikeys.models import Role
from tests.conftest import Keys
from tests.console.test_register_pages import SignedFactory, add_risk, form_fields, location, risk

STATEMENT = {
    "cause": "heavy rain upstream", "event": "the river floods the primary site",
    "consequence": "a week without billing",
}  # fmt: skip
SENTENCE = (
    "Because of heavy rain upstream, there is a risk that the river floods the primary site, which would lead to a "
    "week without billing."
)


def test_the_risk_page_states_the_risk_and_where_it_stands(
    client: TestClient, signed: SignedFactory, keys: Keys
) -> None:
    limits = {"appetite": "low", "tolerance": "critical"}
    assert client.put("/api/v1/appetite/facilities", json=limits, headers=keys.headers("admin")).status_code == 200
    ref = add_risk(
        client, category="Facilities", source="Climate", objectives=["Billing", "Customer trust"], **STATEMENT,
        inherent={"likelihood": 3, "impacts": {"financial": 4, "operational": 2}}, residual=None,
        target={"likelihood": 1, "impact": 2, "date": "2030-06-30"},
    )  # fmt: skip
    page = signed(Role.read).client.get(f"/console/risks/{ref}").text
    assert f'<p class="statement" id="statement">{SENTENCE}</p>' in page
    assert "<dd>threat</dd>" in page and "<dd>Climate</dd>" in page
    assert "<li>Billing</li>" in page and "<li>Customer trust</li>" in page
    # Impacts per dimension, named as the matrix names them, with what the level means there.
    assert "<li>Financial: 4 <span" in page and "2-10 % of annual revenue" in page
    assert "<li>Operational / service: 2 <span" in page
    assert re.search(r"1 × 2 = 2 <span class=\"badge\"[^>]*>low</span>.*by 2030-06-30", page, re.S)
    appetite = page.split('<dd id="appetite">')[1].split("</dd>")[0]
    assert "Outside its category&#39;s appetite" in appetite and "Answered by: a target within the appetite" in appetite
    assert "Outside its appetite" in page.split("</h1>")[1].split("</p>")[0]  # said at the top too
    within = add_risk(client, inherent={"likelihood": 1, "impact": 1}, residual=None)
    assert "Within its category&#39;s appetite" in signed(Role.read).client.get(f"/console/risks/{within}").text


def test_an_opportunity_is_logged_with_its_statement_and_target(client: TestClient, signed: SignedFactory) -> None:
    writer = signed(Role.write)
    new = writer.client.get("/console/risks/new").text
    assert '<optgroup label="For an opportunity" data-group="opportunity">' in new
    assert 'data-treatment-for="f-type"' in new and 'id="f-target.likelihood"' in new
    typed = {
        "title": "New market", "type": "opportunity", **STATEMENT, "source": "Competitor exits",
        "objectives": "Revenue; Brand\r\nGrowth", "category": "strategy", "owner": "ceo", "treatment": "",
        "inherent.likelihood": "3", "inherent.impact": "3", "target.likelihood": "4", "target.impact": "4",
        "target.date": "2031-01-31",
    }  # fmt: skip
    assert location(writer.post("/console/risks/new", typed)) == "/console/risks/R-0001"
    stored = risk(client, "R-0001")
    assert (stored["type"], stored["treatment"], stored["source"]) == ("opportunity", "enhance", "Competitor exits")
    assert stored["objectives"] == ["Revenue", "Brand", "Growth"] and stored["statement"].startswith("Because of heavy")
    assert "there is an opportunity that" in stored["statement"]
    assert stored["target"] == {"likelihood": 4, "impact": 4, "score": 16, "level": "high", "date": "2031-01-31"}
    # A threat's treatment for an opportunity, a target below an opportunity's rating: the API's words, on the field.
    wrong = writer.post("/console/risks/new", {**typed, "title": "Wrong", "treatment": "mitigate"})
    assert wrong.status_code == 422
    assert '<p class="field-error" id="e-treatment">must be one of exploit, enhance, share, accept' in wrong.text
    assert form_fields(wrong.text, "/console/risks/new")["objectives"] == "Revenue; Brand\nGrowth"  # as typed
    low = writer.post("/console/risks/new", {**typed, "title": "Low", "target.likelihood": "1", "target.impact": "1"})
    assert low.status_code == 422 and "The target (score 1) is below the current rating (score 9)." in low.text
    assert '<p class="field-error" id="e-target">must not be below the current rating (score 9)</p>' in low.text
    half = writer.post("/console/risks/new", {**typed, "title": "Half", "target.impact": ""})
    assert half.status_code == 422 and "body.target.impact: Field required" in half.text
    assert len(client.get("/api/v1/risks").json()["items"]) == 1


def test_a_target_above_the_current_rating_is_refused_on_the_edit_form(
    client: TestClient, signed: SignedFactory
) -> None:
    ref = add_risk(client, **STATEMENT, objectives=["Billing"])
    writer = signed(Role.write)
    url = f"/console/risks/{ref}/edit"
    fields = form_fields(writer.client.get(url).text, url)
    assert (fields["type"], fields["event"], fields["objectives"]) == ("threat", STATEMENT["event"], "Billing")
    assert fields["target.likelihood"] == fields["target.date"] == "" and fields["was.cause"] == STATEMENT["cause"]
    above = writer.post(url, {**fields, "target.likelihood": "5", "target.impact": "5"})
    assert above.status_code == 422
    assert '<p class="field-error" id="e-target">must not be above the current rating (score 8)</p>' in above.text
    changed = {**fields, "event": "the dam breaks", "objectives": "Billing\r\nPayroll", "source": "Weather",
               "target.likelihood": "1", "target.impact": "2", "target.date": "2030-03-31"}  # fmt: skip
    assert location(writer.post(url, changed)) == f"/console/risks/{ref}"
    stored = risk(client, ref)
    assert stored["event"] == "the dam breaks" and stored["objectives"] == ["Billing", "Payroll"]
    assert stored["source"] == "Weather" and stored["target"]["date"] == "2030-03-31"
    assert stored["cause"] == STATEMENT["cause"]  # not changed, not sent
    fields = form_fields(writer.client.get(url).text, url)
    assert (fields["target.impact"], fields["objectives"]) == ("2", "Billing\nPayroll")
    cleared = {**fields, "target.likelihood": "", "target.impact": "", "target.date": ""}
    assert location(writer.post(url, cleared))
    assert risk(client, ref)["target"] is None
    turned = form_fields(writer.client.get(url).text, url)
    assert location(writer.post(url, {**turned, "type": "opportunity", "treatment": "exploit"}))
    assert (risk(client, ref)["type"], risk(client, ref)["treatment"]) == ("opportunity", "exploit")


def test_the_processes_and_assets_a_risk_threatens(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client)
    site = {"key": "fra-dc", "kind": "site", "name": "Frankfurt site", "owner": "facilities"}
    assert client.post("/api/v1/assets", json={**site, "classification": "restricted"}).status_code == 201
    payroll = {"key": "payroll", "name": "Payroll", "owner": "head of HR", "criticality": "critical",
               "rto_minutes": "4h", "rpo_minutes": "1h", "mtpd_minutes": "3d"}  # fmt: skip
    assert client.post("/api/v1/processes", json=payroll).status_code == 201
    writer = signed(Role.write)
    assert location(writer.post(f"/console/risks/{ref}/processes", {"process": "payroll"})).endswith("#continuity")
    assert location(writer.post(f"/console/risks/{ref}/assets", {"asset": "A-0001"}))
    unknown = writer.post(f"/console/risks/{ref}/assets", {"asset": "nowhere"})
    assert unknown.status_code == 422 and "no asset has the reference or key &#39;nowhere&#39;" in unknown.text
    page = signed(Role.read).client.get(f"/console/risks/{ref}").text
    section = page.split('id="continuity"')[1].split("</section>")[0]
    assert "P-0001 Payroll" in section and "<td>4h</td><td>1h</td><td>3d</td>" in section and "critical" in section
    assert "A-0001 Frankfurt site" in section and "<td>site</td>" in section and "<td>restricted</td>" in section
    assert "Unlink" not in section and "Link a process" not in section  # a reader
    assert client.get("/api/v1/processes/payroll/risks").json()["risks"][0]["reference"] == ref
    assert location(writer.post(f"/console/risks/{ref}/processes/payroll/remove"))
    assert client.get(f"/api/v1/risks/{ref}/processes").json()["processes"] == []
    history = client.get(f"/api/v1/risks/{ref}/history").json()["items"]
    assert [h["action"] for h in history][-1] == "processes.changed" and history[-1]["actor"] == writer.email


def test_the_new_fields_speak_chinese(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client, **STATEMENT, type="opportunity", treatment="exploit")
    page = signed(Role.read, language="zh-CN").client.get(f"/console/risks/{ref}").text
    assert "机遇" in page and "利用" in page and "处置计划" in page
