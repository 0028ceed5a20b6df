"""The playbook pages in process: the library (and the playbooks that fit a risk), a plan with its time line and
versions, and activating a playbook as the API does, with a risk linked from the register's link."""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.apikeys.models import Role
from tests.conftest import FrozenClock, Keys
from tests.console.conftest import Signed
from tests.helpers import risk_body, row_counts


def _risk(client: TestClient, **overrides: Any) -> str:
    answer = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert answer.status_code == 201, answer.text
    reference: str = answer.json()["reference"]
    return reference


def _publish_second_version(client: TestClient, keys: Keys, playbooks: Path) -> None:
    spec = yaml.safe_load((playbooks / "ransomware.yaml").read_text())
    spec.update(version=2, title="Ransomware (revised)")
    answer = client.post("/api/v1/playbooks", json=spec, headers=keys.headers("admin"))
    assert answer.status_code == 201, answer.text


def test_the_library_lists_the_playbooks_and_those_that_fit_a_risk_first(
    client: TestClient, signed: Callable[..., Signed], playbooks: Path
) -> None:
    reader, writer = signed(Role.read).client, signed(Role.write).client
    page = reader.get("/console/playbooks")
    assert page.status_code == 200
    listed = re.findall(r'<h2><a href="/console/playbooks/([a-z-]+)">', page.text)
    assert "ransomware" in listed and len(listed) == 7
    assert "/activate" not in page.text  # a reader activates nothing
    activate = '<a class="button primary" href="/console/playbooks/ransomware/activate">'
    assert activate in writer.get("/console/playbooks").text

    risk = _risk(client, category="Cyber")
    fitting = writer.get("/console/playbooks", params={"risk": risk})
    order = re.findall(r'<h2><a href="/console/playbooks/([a-z-]+)">', fitting.text)
    assert set(order[:2]) == {"personal-data-breach", "ransomware"}  # the two that answer "cyber" come first
    assert f"Answers the category of {risk}" in fitting.text
    assert f'href="/console/playbooks/ransomware/activate?risk={risk}"' in fitting.text

    unknown = writer.get("/console/playbooks", params={"risk": "R-9999"})
    assert unknown.status_code == 404 and "Risk 9999 does not exist." in unknown.text
    assert 'value="R-9999"' in unknown.text


def test_a_plan_shows_its_roles_time_line_communications_impact_and_versions(
    client: TestClient, keys: Keys, signed: Callable[..., Signed], playbooks: Path
) -> None:
    _publish_second_version(client, keys, playbooks)
    reader = signed(Role.read).client
    page = reader.get("/console/playbooks/ransomware")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Ransomware (revised)</h1>" in text and "version 2" in text
    assert "<svg" in text and text.count("<circle") == 14  # each step on the time line
    assert ">RTO</text>" in text and ">MTPD</text>" in text
    assert re.search(r"Recovery time objective \(RTO\)</dt><dd>2 d</dd>", text)
    assert re.search(r"Recovery point objective \(RPO\)</dt><dd>1 d</dd>", text)
    assert re.search(r"Maximum tolerable period of disruption \(MTPD\)</dt><dd>7 d</dd>", text)
    assert re.search(r"<strong>\+15 min</strong>\s*·\s*Confirm the attack and declare a SEV1", text)
    assert re.search(r"<strong>\+14 d</strong>\s*·\s*Hold the post-incident review", text)
    assert "<h3>Incident commander</h3>" in text and "Press holding statement" in text
    assert "{incident_ref}" in text  # a plan shows its messages as templates
    assert '<a href="/console/playbooks/ransomware?version=1">1</a>' in text
    assert "/activate" not in text  # a reader

    first = reader.get("/console/playbooks/ransomware", params={"version": 1})
    assert "<h1>Ransomware or destructive cyber attack</h1>" in first.text
    missing = reader.get("/console/playbooks/ransomware", params={"version": 9})
    assert missing.status_code == 404 and "Playbook &#39;ransomware&#39; version 9 does not exist." in missing.text
    assert reader.get("/console/playbooks/no-such-plan").status_code == 404


def test_activating_with_a_risk_from_the_register_links_it(
    client: TestClient, signed: Callable[..., Signed], playbooks: Path, frozen_clock: FrozenClock
) -> None:
    risk = _risk(client, category="cyber")
    writer = signed(Role.write)
    form = writer.client.get(f"/console/playbooks/ransomware/activate?risk={risk}")
    assert form.status_code == 200
    assert f'name="risk_ids" type="text" value="{risk}"' in form.text
    assert 'value="Ransomware or destructive cyber attack"' in form.text and 'name="exercise"' in form.text

    answer = writer.post(
        "/console/playbooks/ransomware/activate",
        {"title": "Ransomware on the file servers", "severity": "SEV1", "risk_ids": risk, "exercise": "true"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/incidents/INC-0001"
    incident = client.get("/api/v1/incidents/INC-0001").json()
    assert incident["playbook"] == "ransomware" and incident["risk_ids"] == [risk]
    assert incident["title"] == "Ransomware on the file servers" and incident["exercise"] is True
    assert incident["declared_by"] == writer.email and len(incident["steps"]) == 14
    room = writer.client.get(answer.headers["location"])
    assert room.status_code == 200 and "Ransomware on the file servers" in room.text


def test_a_refused_activation_shows_the_api_words_and_keeps_what_was_typed(
    client: TestClient, keys: Keys, signed: Callable[..., Signed], engine: Engine, playbooks: Path,
    frozen_clock: FrozenClock,
) -> None:  # fmt: skip
    writer = signed(Role.write)
    before = row_counts(engine)
    future = writer.post(
        "/console/playbooks/ransomware/activate",
        {"title": "Shares encrypted", "description": "Seen by the night shift", "detected_at": "2026-07-01T10:00"},
    )
    assert future.status_code == 422 and "The detection time cannot be in the future." in future.text
    assert 'value="Shares encrypted"' in future.text and "Seen by the night shift</textarea>" in future.text
    unknown = writer.post("/console/playbooks/ransomware/activate", {"risk_ids": "R-0404"})
    assert unknown.status_code == 422 and "Some linked risks do not exist; nothing was declared." in unknown.text
    assert row_counts(engine) == before

    _publish_second_version(client, keys, playbooks)
    assert client.post("/api/v1/playbooks/ransomware/versions/1/retire", headers=keys.headers("admin")).is_success
    old = writer.client.get("/console/playbooks/ransomware?version=1")
    assert "retired" in old.text and "/activate" not in old.text
    retired = writer.post("/console/playbooks/ransomware/activate", {"version": "1"})
    assert retired.status_code == 409
    assert "Playbook &#39;ransomware&#39; version 1 is retired and cannot be activated." in retired.text
    assert client.get("/api/v1/incidents").json()["items"] == []


def test_readers_and_forged_posts_cannot_activate(
    signed: Callable[..., Signed], engine: Engine, playbooks: Path
) -> None:
    reader, writer = signed(Role.read), signed(Role.write)
    before = row_counts(engine)
    assert reader.client.get("/console/playbooks/ransomware/activate").status_code == 403
    assert reader.post("/console/playbooks/ransomware/activate", {"title": "x"}).status_code == 403
    forged = writer.client.post("/console/playbooks/ransomware/activate", data={"title": "x"})
    assert forged.status_code == 403 and "CSRF token" in forged.text
    assert row_counts(engine) == before


def test_the_plan_speaks_the_reader_language(signed: Callable[..., Signed], playbooks: Path) -> None:
    page = signed(Role.read, language="zh-CN").client.get("/console/playbooks/ransomware").text
    assert "恢复时间目标（RTO）" in page and "2 天" in page and "Incident commander" in page  # data as stored
