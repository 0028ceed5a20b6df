"""The dashboard: heat maps whose cells list exactly their risks, figures that match the register lists they link to,
deadlines, open incidents with their RTO, and "mine" for the signed-in user; user text shown as text."""

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from riskops.apikeys.models import Role
from riskops.clock import now as utcnow
from riskops.reviews import cycles
from tests.conftest import Keys
from tests.console.conftest import Signed
from tests.helpers import risk_body

SCRIPT_TITLE = '<script>alert("owned")</script>'
ME = "owner@example.org"  # display name "owner", the e-mail's local part


def _risk(
    client: TestClient, title: str, owner: str, inherent: tuple[int, int], residual: tuple[int, int] | None = None,
    **overrides: Any,
) -> dict[str, Any]:  # fmt: skip
    def rating(pair: tuple[int, int] | None) -> dict[str, int] | None:
        return None if pair is None else {"likelihood": pair[0], "impact": pair[1]}

    body = risk_body(title=title, owner=owner, inherent=rating(inherent), residual=rating(residual), **overrides)
    answer = client.post("/api/v1/risks", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _figure(page: str, name: str) -> str:
    found = re.search(rf'data-figure="{re.escape(name)}"[^>]*>([^<]*)<', page)
    assert found, f"no figure {name}"
    return found.group(1).strip()


def _listed(client: TestClient, query: str) -> set[str]:
    """The references the API's risk list gives for these filters (the list a figure links to)."""
    answer = client.get(f"/api/v1/risks?{query}&limit=500")
    assert answer.status_code == 200, answer.text
    return {item["reference"] for item in answer.json()["items"]}


def _register(client: TestClient) -> dict[str, dict[str, Any]]:
    """A register with something in every figure: mine by e-mail and by display name (any case), someone else's,
    a closed one, an overdue one, one above the appetite, and an acceptance ending soon."""
    past = (utcnow() - timedelta(days=3)).isoformat()
    ending = {"approver": "cfo", "expires_at": (utcnow() + timedelta(days=10)).isoformat()}
    risks = {
        "script": _risk(client, SCRIPT_TITLE, ME.upper(), (3, 5), (2, 4), next_review_at=past),
        "critical": _risk(client, "Region lost", "Owner", (5, 5)),
        "other": _risk(client, "Someone else's", "someone else", (1, 1)),
        "accepted": _risk(client, "Accepted for now", "someone else", (2, 2), treatment="accept", acceptance=ending),
        "closed": _risk(client, "Gone", ME, (3, 5)),
    }
    closed = client.post(f"/api/v1/risks/{risks['closed']['reference']}/close", json={"reason": "sold the site"})
    assert closed.status_code == 200, closed.text
    return risks


def test_the_figures_match_the_register_lists_they_link_to(
    client: TestClient, signed: Callable[..., Signed], keys: Keys
) -> None:
    risks = _register(client)
    me = signed(Role.write, email=ME)
    page = me.client.get("/console/")
    assert page.status_code == 200, page.text
    text = page.text
    # Open risks per level (the current rating: residual where assessed), each linking to the register list with the
    # API's filter names; the closed risk is not counted.
    assert _figure(text, "level-critical") == "1" and _figure(text, "level-high") == "0"
    assert _figure(text, "level-medium") == "1" and _figure(text, "level-low") == "2"
    for level in ("low", "medium", "high", "critical"):
        assert int(_figure(text, f"level-{level}")) == len(_listed(client, f"status=open&level={level}"))
        assert f'href="/console/risks?status=open&amp;level={level}"' in text
    # Overdue: the one with a past review date.
    assert _figure(text, "overdue") == "1" == str(len(_listed(client, "overdue=true")))
    assert 'href="/console/risks?overdue=true"' in text
    # Outside the appetite (the category's own, here the matrix's medium): the critical one, unanswered.
    assert _figure(text, "outside-appetite") == "1" == str(len(_listed(client, "status=open&outside_appetite=true")))
    assert 'href="/console/risks?status=open&amp;outside_appetite=true"' in text
    assert '<td data-response="none"><strong>no response yet</strong>' in text.split('id="outside-appetite"')[1]
    # The acceptance ending within 30 days.
    assert risks["accepted"]["reference"] in text.split('id="acceptances"')[1].split("</section>")[0]
    # Mine: due for review within the reminder's lead time (the overdue one; the critical one is due in 30 days).
    mine = text.split('id="mine"')[1]
    assert _figure(mine, "my-due") == "Due: 1"
    assert risks["script"]["reference"] in mine and risks["critical"]["reference"] not in mine.split("<h3>")[1]
    assert "owner=OWNER%40EXAMPLE.ORG" not in text and "owner=owner%40example.org" in text


def test_mine_lists_my_review_tasks_and_incident_steps(
    client: TestClient, signed: Callable[..., Signed], keys: Keys, playbooks: object
) -> None:
    risks = _register(client)
    cycle = cycles.cycle_id_for(datetime.now(UTC), 1)
    opened = client.post("/api/v1/reviews", json={"cycle": cycle}, headers=keys.headers("admin"))
    assert opened.status_code == 201, opened.text
    real = client.post("/api/v1/incidents", json={"playbook": "ransomware", "title": "Files encrypted"}).json()
    drill = client.post("/api/v1/incidents", json={"playbook": "ransomware", "title": "Drill", "exercise": True}).json()
    for incident, assignee in ((real, "OWNER"), (drill, ME)):
        step = incident["steps"][0]["key"]
        assigned = client.put(f"/api/v1/incidents/{incident['id']}/steps/{step}/assignee", json={"assignee": assignee})
        assert assigned.status_code == 200, assigned.text
    me = signed(Role.write, email=ME)
    text = me.client.get("/console/").text
    mine = text.split('id="mine"')[1]
    # My two open risks, neither reviewed in the open cycle.
    tasks = re.search(r'data-figure="my-tasks">(.*?)</ul>', mine, re.S)
    assert tasks and f'href="/console/reviews/{cycle}/mine"' in tasks.group(1)
    assert risks["script"]["reference"] in tasks.group(1) and risks["critical"]["reference"] in tasks.group(1)
    assert risks["other"]["reference"] not in tasks.group(1)
    # My steps in both the incident and the exercise; the open incidents card lists the real one only, with its RTO.
    steps = re.search(r'data-figure="my-steps">(.*?)</table>', mine, re.S)
    assert steps and f'/console/incidents/{real["id"]}"' in steps.group(1)
    assert f'/console/incidents/{drill["id"]}"' in steps.group(1)
    incidents = text.split('id="incidents"')[1].split("</section>")[0]
    assert f'href="/console/incidents/{real["id"]}"' in incidents and "Files encrypted" in incidents
    assert "Drill" not in incidents
    assert re.search(r"(1 d 23 h|2 d) left", incidents)  # the ransomware playbook's RTO is 48 hours, as the room says
    # Someone else sees none of it as theirs.
    other = signed(Role.read).client.get("/console/").text.split('id="mine"')[1]
    assert _figure(other, "my-tasks") == _figure(other, "my-steps") == _figure(other, "my-due") == "None."


def test_each_heat_map_cell_lists_exactly_its_risks(client: TestClient, signed: Callable[..., Signed]) -> None:
    risks = _register(client)
    _risk(client, "Second in the cell", "x", (3, 5))
    reader = signed(Role.read)
    page = reader.client.get("/console/").text
    cells = re.findall(r'<a href="(/console/cell\?[^"]+)"><title>[^<]*open risks (\d+)</title>', page)
    assert len(cells) == 2 * 25  # both views of the 5x5 matrix
    open_refs = _listed(client, "status=open")
    for view in ("inherent", "residual"):
        seen: list[str] = []
        for href, count in cells:
            if f"view={view}&" not in html.unescape(href):
                continue
            listed = reader.client.get(html.unescape(href))
            assert listed.status_code == 200, listed.text
            refs = re.findall(r'href="/console/risks/(R-\d+)"', listed.text)
            assert len(refs) == int(count), href
            seen += refs
        rated = {r for r in open_refs if view == "inherent" or r == risks["script"]["reference"]}
        assert sorted(seen) == sorted(rated)  # every open risk rated in the view, each in one cell
    cell = reader.client.get("/console/cell?view=inherent&likelihood=3&impact=5").text
    assert cell.count('href="/console/risks/R-') == 2 and "Gone" not in cell  # the closed one is not counted
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in cell and SCRIPT_TITLE not in cell
    assert reader.client.get("/console/cell?view=sideways&likelihood=3&impact=5").status_code == 422


def test_a_risk_title_is_text_on_the_dashboard(client: TestClient, signed: Callable[..., Signed]) -> None:
    _register(client)
    text = signed(Role.write, email=ME).client.get("/console/").text
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in text
    assert SCRIPT_TITLE not in text and "<script>" not in text


def test_controls_found_ineffective_show_the_open_risks_they_expose(
    client: TestClient, signed: Callable[..., Signed]
) -> None:
    reader = signed(Role.read)
    assert _figure(reader.client.get("/console/").text, "ineffective-controls") == "None."
    exposed, closed = _risk(client, SCRIPT_TITLE, "ops", (3, 5)), _risk(client, "Gone", "ops", (2, 2))
    for risk in (exposed, closed):
        applied = client.post(
            f"/api/v1/risks/{risk['reference']}/controls", json={"title": "<b>Backups</b>", "owner": "it"}
        )
        assert applied.status_code == 201, applied.text
    passed = client.post("/api/v1/controls", json={"title": "Patching", "owner": "it"})
    assert passed.status_code == 201, passed.text
    client.post(f"/api/v1/risks/{closed['reference']}/close", json={"reason": "sold"})
    today = utcnow().date().isoformat()
    for ref, result in (("C-0001", "ineffective"), ("C-0002", "ineffective"), ("C-0003", "effective")):
        test = {"tested_on": today, "tester": "audit", "result": result, "evidence_url": "https://evidence.example/1"}
        assert client.post(f"/api/v1/controls/{ref}/tests", json=test).status_code == 201

    panel = reader.client.get("/console/").text.split('id="ineffective-controls"')[1].split("</section>")[0]
    assert 'id="control-C-0001"' in panel and 'id="control-C-0002"' in panel and "C-0003" not in panel
    assert panel.count(f'href="/console/risks/{exposed["reference"]}"') == 1  # C-0001 exposes it
    assert f'/console/risks/{closed["reference"]}"' not in panel and "No open risk" in panel  # C-0002's is closed
    assert "&lt;b&gt;Backups&lt;/b&gt;" in panel and "<b>Backups" not in panel
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in panel and today in panel
    chinese = signed(Role.read, language="zh-CN").client.get("/console/").text
    assert "测试判定无效的控制措施" in chinese and "暴露的风险" in chinese


def test_outside_the_appetite_is_each_categorys_and_says_what_answers_it(
    client: TestClient, signed: Callable[..., Signed], keys: Keys
) -> None:
    admin = keys.headers("admin")
    for category, limits in (("cyber", {"appetite": "low", "tolerance": "high"}), ("finance", {"appetite": "high"})):
        assert client.put(f"/api/v1/appetite/{category}", json=limits, headers=admin).status_code == 200
    # Medium is within the matrix's appetite but above cyber's; high is above the matrix's but within finance's.
    unanswered = _risk(client, "Phishing wave", "ciso", (3, 3), category="Cyber")
    within = _risk(client, "Currency swing", "cfo", (3, 4), category="finance")
    aimed = _risk(client, "Region lost", "cto", (5, 5), target={"likelihood": 1, "impact": 2, "date": "2030-01-01"})
    accepted = _risk(client, "Legacy VPN", "ciso", (3, 4), category="cyber")
    request = {"risks": [accepted["reference"]], "justification": "Retired soon",
               "expires_at": (utcnow() + timedelta(days=60)).date().isoformat()}  # fmt: skip
    made = client.post("/api/v1/acceptances", json=request)
    assert made.status_code == 201, made.text
    approved = client.post(f"/api/v1/acceptances/{made.json()['reference']}/approve", json={}, headers=admin)
    assert approved.status_code == 200, approved.text
    text = signed(Role.read).client.get("/console/").text
    outside = {unanswered["reference"], aimed["reference"], accepted["reference"]}
    assert _listed(client, "status=open&outside_appetite=true") == outside
    assert _figure(text, "outside-appetite") == "3"
    section = text.split('id="outside-appetite"')[1].split("</section>")[0]
    answers = dict(re.findall(r'href="/console/risks/(R-\d+)">.*?data-response="(\w+)"', section, re.S))
    assert answers == {
        unanswered["reference"]: "none", aimed["reference"]: "target", accepted["reference"]: "accepted"
    }  # fmt: skip
    assert within["reference"] not in section
    assert "a target within the appetite" in section and "an acceptance in force" in section
    assert "beyond the tolerance" not in section  # cyber's tolerance is high: high is not above it
    # The figure links to the register list with the same filter, which keeps it across its pages.
    listed = signed(Role.read).client.get("/console/risks?status=open&outside_appetite=true").text
    assert set(re.findall(r'<a href="/console/risks/(R-\d{4})">', listed)) == outside
    assert '<option value="true" selected>Outside its appetite</option>' in listed
