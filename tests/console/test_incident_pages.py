"""The incident pages in process: the list and its filters, declaring, and the incident room, where only the moves
the domain allows are offered, refusals come in the API's words, and the live part answers 304 until it changes."""

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.apikeys.models import Role
from riskops.console import incidents as console_incidents
from tests.conftest import FrozenClock
from tests.console.conftest import Signed
from tests.helpers import risk_body, row_counts
from tests.incidents.support import finish_obligations

SUMMARY = {"what_happened": "Files encrypted on 40 hosts.", "impact": "Payments down 6 hours.", "root_cause": "VPN"}


def _activate(client: TestClient, **body: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/playbooks/ransomware/activate", json=body)
    assert answer.status_code == 201, answer.text
    incident: dict[str, Any] = answer.json()
    return incident


def _declare(client: TestClient, **body: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/incidents", json={"title": "Flood", "severity": "SEV2", **body})
    assert answer.status_code == 201, answer.text
    incident: dict[str, Any] = answer.json()
    return incident


def _moves(page: str) -> list[str]:
    """The state moves the room offers: its move buttons, and the link to the close form."""
    buttons = re.findall(r'<button type="submit" name="action" value="(\w+)"', page)
    return buttons + (["close"] if re.search(r'href="/console/incidents/INC-\d+/close"', page) else [])


def _get(client: TestClient, url: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(url).json()
    return found


# ---- the list ----


def test_the_list_filters_as_the_api_does_and_pages_by_keyset(
    client: TestClient, signed: Callable[..., Signed], playbooks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    risk = client.post("/api/v1/risks", json=risk_body(title="Ransom")).json()["reference"]
    flood = _declare(client, title="Flood in the basement", severity="SEV1")
    ransom = _activate(client, title="Encrypted file shares", risk_ids=[risk])
    client.post(f"/api/v1/incidents/{ransom['reference']}/acknowledge")
    _declare(client, title="Tabletop drill", exercise=True)
    reader = signed(Role.read).client

    def listed(**params: Any) -> list[str]:
        page = reader.get("/console/incidents", params=params)
        assert page.status_code == 200, page.text
        return re.findall(r'<a href="/console/incidents/(INC-\d+)">', page.text)

    assert listed() == [ransom["reference"], flood["reference"]]  # newest first, no exercise
    assert listed(state="acknowledged") == [ransom["reference"]]
    assert listed(state=["declared", "acknowledged"]) == [ransom["reference"], flood["reference"]]
    assert listed(severity="SEV2") == []
    assert listed(severity="SEV1", q="BASEMENT") == [flood["reference"]]
    assert listed(playbook="ransomware") == [ransom["reference"]]
    assert listed(risk=risk) == [ransom["reference"]]
    assert listed(exercise="true") == ["INC-0003"]
    assert listed(playbook="", risk="", q=" ") == listed()  # a blank field filters nothing

    refused = reader.get("/console/incidents", params={"risk": "not-a-risk"})
    assert refused.status_code == 404
    assert "&#39;not-a-risk&#39; is not a risk id or reference" in refused.text
    assert 'value="not-a-risk"' in refused.text  # the typed filter is kept

    monkeypatch.setattr(console_incidents, "PAGE_SIZE", 1)
    first = reader.get("/console/incidents", params={"severity": "SEV1"})
    following = re.search(r'<a href="(\?[^"]+)">Next page</a>', first.text)
    assert following and "severity=SEV1" in following.group(1)
    second = reader.get("/console/incidents" + following.group(1).replace("&amp;", "&"))
    assert re.findall(r'<a href="/console/incidents/(INC-\d+)">', second.text) == [flood["reference"]]
    assert "First page" in second.text and "Next page" not in second.text


def test_declaring_from_the_console_is_the_api_declaration(
    client: TestClient, signed: Callable[..., Signed], playbooks: Path, frozen_clock: FrozenClock
) -> None:
    writer = signed(Role.write)
    form = writer.client.get("/console/incidents/new")
    assert form.status_code == 200
    assert '<option value="ransomware">' in form.text and 'name="exercise"' in form.text
    risk = client.post("/api/v1/risks", json=risk_body()).json()["reference"]

    answer = writer.post(
        "/console/incidents/new",
        {"title": "Water in the data centre", "severity": "SEV2", "description": "Pump failed",
         "detected_at": "2026-07-01T08:30", "risk_ids": f" {risk}, ", "exercise": "true"},
    )  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/console/incidents/INC-0001"
    declared = _get(client, "/api/v1/incidents/INC-0001")
    assert (declared["title"], declared["severity"], declared["exercise"]) == ("Water in the data centre", "SEV2", True)
    assert declared["detected_at"] == "2026-07-01T08:30:00Z"  # typed in the viewer's zone (UTC here)
    assert declared["risk_ids"] == [risk] and declared["declared_by"] == writer.email

    once = re.search(r'name="idempotency_key" value="([\w-]+)"', writer.client.get("/console/incidents/new").text)
    assert once
    for _ in range(2):  # the same form sent twice (a double tap, a resubmitted page) declares once
        activated = writer.post("/console/incidents/new", {"playbook": "ransomware", "idempotency_key": once.group(1)})
        assert activated.status_code == 303 and activated.headers["location"] == "/console/incidents/INC-0002"
    assert _get(client, "/api/v1/incidents/INC-0002")["steps"][0]["key"] == "triage-and-declare"
    assert [i["reference"] for i in _get(client, "/api/v1/incidents?exercise=false")["items"]] == ["INC-0002"]


def test_a_refused_declaration_shows_the_api_words_and_keeps_what_was_typed(
    client: TestClient, signed: Callable[..., Signed], engine: Engine, frozen_clock: FrozenClock
) -> None:
    writer = signed(Role.write)
    before = row_counts(engine)
    missing = writer.post("/console/incidents/new", {"description": "Smoke in hall B", "risk_ids": "R-0042"})
    assert missing.status_code == 422
    assert "Some linked risks do not exist; nothing was declared." in missing.text
    assert "Smoke in hall B</textarea>" in missing.text and 'value="R-0042"' in missing.text
    untitled = writer.post("/console/incidents/new", {"description": "Smoke in hall B"})
    assert untitled.status_code == 422 and "Title and severity needed when no playbook gives one." in untitled.text
    tomorrow = {"title": "Fire", "severity": "SEV1", "detected_at": "2026-07-02T08:00"}
    future = writer.post("/console/incidents/new", tomorrow)
    assert future.status_code == 422 and "The detection time cannot be in the future." in future.text
    assert 'aria-invalid="true"' in future.text and 'value="Fire"' in future.text
    wrong = writer.post("/console/incidents/new", {"title": "Fire", "severity": "SEV9"})
    assert wrong.status_code == 422 and "Invalid request: body.severity" in wrong.text
    assert row_counts(engine) == before
    assert _get(client, "/api/v1/incidents")["items"] == []


# ---- the room ----


def test_the_room_offers_only_the_moves_the_domain_allows(
    client: TestClient, signed: Callable[..., Signed], playbooks: Path
) -> None:
    ref = _declare(client)["reference"]
    writer = signed(Role.write)
    room = f"/console/incidents/{ref}"
    assert _moves(writer.client.get(room).text) == ["acknowledge"]
    moved = writer.post(f"{room}/move", {"action": "acknowledge", "note": "on the bridge"})
    assert moved.status_code == 303 and moved.headers["location"] == f"{room}#status"
    assert _moves(writer.client.get(room).text) == ["mitigate"]
    for action in ("mitigate", "resolve"):
        client.post(f"/api/v1/incidents/{ref}/{action}")
    page = writer.client.get(room).text
    assert sorted(_moves(page)) == ["close", "reopen"]  # a resolved incident closes or reopens, per the domain
    assert "Mark mitigated" not in page and ">Acknowledge<" not in page
    refused = writer.post(f"{room}/move", {"action": "acknowledge"})
    assert refused.status_code == 409
    assert f"{ref} is resolved; it cannot acknowledge. Allowed: close, reopen." in refused.text
    timeline = _get(client, f"/api/v1/incidents/{ref}/timeline")["items"]
    assert any(e["text"] == "State declared → acknowledged: on the bridge" for e in timeline)


def test_working_the_plan_from_the_room(client: TestClient, signed: Callable[..., Signed], playbooks: Path) -> None:
    incident = _activate(client)
    ref, writer = incident["reference"], signed(Role.write)
    room = f"/console/incidents/{ref}"
    page = writer.client.get(room).text
    assert '<datalist id="people">' in page and f'<option value="{writer.email}">' in page
    waiting = page[page.index('id="step-isolate-affected-hosts"') :].split('role="listitem"')[0]
    assert "Waits for" in waiting and "Confirm the attack and declare a SEV1" in waiting
    assert "/steps/isolate-affected-hosts/start" not in waiting and "/skip" in waiting

    refused = writer.post(f"{room}/steps/isolate-affected-hosts/start")
    assert refused.status_code == 409
    words = "Step &#39;isolate-affected-hosts&#39; depends on steps that are not done: triage-and-declare."
    assert words in refused.text

    assert writer.post(f"{room}/roles/incident-commander", {"assignee": "dana@example.org"}).status_code == 303
    assert writer.post(f"{room}/steps/triage-and-declare/start").status_code == 303
    done = writer.post(f"{room}/steps/triage-and-declare/complete", {"note": "SEV1 confirmed"})
    assert done.headers["location"] == f"{room}#step-triage-and-declare"
    assert writer.post(f"{room}/steps/protect-backups/skip", {"reason": "backups are offline tapes"}).status_code == 303
    no_reason = writer.post(f"{room}/steps/preserve-evidence/skip", {"reason": " "})
    assert no_reason.status_code == 422 and "Invalid request: body.reason: Field required" in no_reason.text
    assert writer.post(f"{room}/communications/board-briefing/sent").status_code == 303
    assert writer.post(f"{room}/notes", {"text": "Bridge on +1 555 0100"}).status_code == 303
    empty = writer.post(f"{room}/notes", {"text": ""})
    assert empty.status_code == 422

    now = _get(client, f"/api/v1/incidents/{ref}")
    steps = {s["key"]: s for s in now["steps"]}
    assert steps["triage-and-declare"]["status"] == "done" and steps["protect-backups"]["status"] == "skipped"
    assert steps["protect-backups"]["skip_reason"] == "backups are offline tapes"
    assert next(r for r in now["roles"] if r["key"] == "incident-commander")["assignee"] == "dana@example.org"
    assert next(m for m in now["communications"] if m["key"] == "board-briefing")["status"] == "sent"
    texts = [e["text"] for e in _get(client, f"/api/v1/incidents/{ref}/timeline")["items"]]
    assert "Step 'Confirm the attack and declare a SEV1' done: SEV1 confirmed" in texts
    assert "Bridge on +1 555 0100" in texts

    page = writer.client.get(room).text
    assert page.count("/steps/isolate-affected-hosts/start") == 1  # its dependency is done: it may start now
    board = page[page.index('id="message-board-briefing"') :].split('role="listitem"')[0]
    assert 'data-copy="text-board-briefing"' in board and "/sent" not in board  # sent once: no second "mark sent"
    assert f"At {incident['declared_at'][:10]}" in page  # the message's text, filled in


def test_closing_is_refused_while_steps_are_owed_and_lists_them(
    client: TestClient, signed: Callable[..., Signed], playbooks: Path
) -> None:
    incident = _activate(client, exercise=True)
    ref, writer = incident["reference"], signed(Role.write)
    for action in ("acknowledge", "mitigate", "resolve"):
        client.post(f"/api/v1/incidents/{ref}/{action}")
    form = writer.client.get(f"/console/incidents/{ref}/close")
    assert form.status_code == 200 and 'name="objectives_met"' in form.text  # an exercise says if it met them
    fields = {**SUMMARY, "objectives_met": "yes", "action-0-title": "MFA on the VPN", "action-0-owner": "secops"}
    refused = writer.post(f"/console/incidents/{ref}/close", fields)
    assert refused.status_code == 409
    assert f"{ref} cannot close while it owes 14 required step(s) and 7 required communication(s)" in refused.text
    assert "Isolate affected hosts and stop lateral movement</a> (isolate-affected-hosts)" in refused.text
    assert "Press holding statement</a> (press-holding-statement)" in refused.text
    assert 'value="MFA on the VPN"' in refused.text and "Payments down 6 hours.</textarea>" in refused.text

    unsure = writer.post(f"/console/incidents/{ref}/close", {**SUMMARY, "impact": ""})
    assert unsure.status_code == 422 and "Invalid request: body.impact: Field required" in unsure.text

    finish_obligations(client, _get(client, f"/api/v1/incidents/{ref}"))
    closed = writer.post(f"/console/incidents/{ref}/close", fields)
    assert closed.status_code == 303 and closed.headers["location"] == f"/console/incidents/{ref}"
    now = _get(client, f"/api/v1/incidents/{ref}")
    assert now["state"] == "closed" and now["objectives_met"] is True
    assert now["summary"]["follow_up_actions"] == [
        {"title": "MFA on the VPN", "owner": "secops", "due_date": None, "control_for": None}
    ]
    page = writer.client.get(f"/console/incidents/{ref}").text
    assert "Post-incident summary" in page and "Files encrypted on 40 hosts." in page
    assert _moves(page) == [] and "/notes" not in page and "/roles/" not in page  # closed: no more changes


def test_the_live_part_answers_304_until_the_room_changes(
    client: TestClient, signed: Callable[..., Signed], playbooks: Path, frozen_clock: FrozenClock
) -> None:
    ref = _activate(client)["reference"]
    reader = signed(Role.read).client
    page = reader.get(f"/console/incidents/{ref}").text
    assert f'data-live="/console/incidents/{ref}/live"' in page
    live = reader.get(f"/console/incidents/{ref}/live")
    assert live.status_code == 200 and live.headers["etag"] and "<html" not in live.text
    assert 'id="timeline"' in live.text and "RTO" in live.text and "2 d left" in live.text
    tag = live.headers["etag"]
    unchanged = reader.get(f"/console/incidents/{ref}/live", headers={"If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.headers["etag"] == tag and unchanged.content == b""

    client.post(f"/api/v1/incidents/{ref}/notes", json={"text": "Insurer called back"})
    changed = reader.get(f"/console/incidents/{ref}/live", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert "Insurer called back" in changed.text


def test_the_countdowns_run_out_and_say_so(
    client: TestClient, signed: Callable[..., Signed], playbooks: Path, frozen_clock: FrozenClock
) -> None:
    ref = _activate(client)["reference"]
    frozen_clock.advance(timedelta(days=2, hours=1))
    reader = signed(Role.read).client  # signed in after the clock moved: the session is fresh
    live = reader.get(f"/console/incidents/{ref}/live").text
    assert "overdue by 1 h" in live and "4 d 23 h left" in live  # RTO passed 1 h ago; MTPD (7 d) still running
    for action in ("acknowledge", "mitigate", "resolve"):
        client.post(f"/api/v1/incidents/{ref}/{action}")
    live = reader.get(f"/console/incidents/{ref}/live").text
    assert re.search(r'id="deadline-rto">[^<]*<strong>missed</strong>', live)
    assert re.search(r'id="deadline-mtpd">[^<]*<strong>met</strong>', live)


def test_a_reader_sees_no_buttons_and_may_not_post(
    client: TestClient, signed: Callable[..., Signed], engine: Engine, playbooks: Path
) -> None:
    ref = _activate(client)["reference"]
    reader = signed(Role.read)
    page = reader.client.get(f"/console/incidents/{ref}").text
    assert '<form method="post" action="/console/incidents' not in page and "<datalist" not in page
    assert 'data-copy="text-board-briefing"' in page  # copying is reading
    assert "Declare an incident" not in reader.client.get("/console/incidents").text
    before = row_counts(engine)
    room = f"/console/incidents/{ref}"
    for url, data in [
        (f"{room}/move", {"action": "acknowledge"}), (f"{room}/notes", {"text": "x"}),
        (f"{room}/steps/triage-and-declare/start", {}), (f"{room}/roles/scribe", {"assignee": "me"}),
        (f"{room}/communications/board-briefing/sent", {}), (f"{room}/close", SUMMARY),
        ("/console/incidents/new", {"title": "x", "severity": "SEV1"}),
    ]:  # fmt: skip
        assert reader.post(url, data).status_code == 403, url
    assert reader.client.get("/console/incidents/new").status_code == 403
    assert row_counts(engine) == before


def test_a_post_without_the_csrf_token_is_refused(
    client: TestClient, signed: Callable[..., Signed], engine: Engine, playbooks: Path
) -> None:
    ref = _activate(client)["reference"]
    writer = signed(Role.write)
    before = row_counts(engine)
    for url, data in [
        (f"/console/incidents/{ref}/notes", {"text": "forged"}),
        (f"/console/incidents/{ref}/move", {"action": "acknowledge"}),
        ("/console/incidents/new", {"title": "forged", "severity": "SEV1"}),
    ]:
        refused = writer.client.post(url, data=data)
        assert refused.status_code == 403 and "CSRF token" in refused.text, url
    assert row_counts(engine) == before


def test_markup_in_an_incident_or_a_note_is_text(
    client: TestClient, signed: Callable[..., Signed], playbooks: Path
) -> None:
    ref = _declare(client, title="<script>alert(1)</script>", description="<b>bold</b>")["reference"]
    writer = signed(Role.write)
    writer.post(f"/console/incidents/{ref}/notes", {"text": "<img src=x onerror=alert(2)>"})
    for page in (writer.client.get(f"/console/incidents/{ref}").text, writer.client.get("/console/incidents").text):
        assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    room = writer.client.get(f"/console/incidents/{ref}").text
    assert "<img src=x" not in room and "&lt;img src=x onerror=alert(2)&gt;" in room
    assert "<b>bold</b>" not in room and "&lt;b&gt;bold&lt;/b&gt;" in room


def test_the_room_speaks_the_reader_language(
    client: TestClient, signed: Callable[..., Signed], playbooks: Path
) -> None:
    ref = _activate(client)["reference"]
    page = signed(Role.write, language="zh-CN").client.get(f"/console/incidents/{ref}").text
    assert "时间线" in page and "确认" in page and "Confirm the attack and declare a SEV1" in page  # data as stored
