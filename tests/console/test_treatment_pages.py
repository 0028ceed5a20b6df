"""A risk's treatment plan on its page: the plan in figures and its actions; adding one, starting it, marking it
done and cancelling one with a reason, each against the action's ETag; the refusals in the API's words."""

import re

from fastapi.testclient import TestClient

from riskops.apikeys.models import Role
from tests.console.test_register_pages import SignedFactory, add_risk, form_fields, location, risk

ACTION = {
    "title": "Install flood barriers", "description": "Both loading bays", "owner": "facilities@example.org",
    "due_date": "2030-09-30", "cost.amount": "12500", "cost.currency": "EUR", "status": "planned",
}  # fmt: skip


def button_form(page: str, url: str, label: str) -> dict[str, str]:
    """The fields of the one-button form posting to url whose button says label."""
    for found in re.finditer(rf'<form method="post" action="{re.escape(url)}".*?</form>', page, re.S):
        if f">{label}</button>" in found.group(0):
            return form_fields(found.group(0), url)
    raise AssertionError(f"no button {label} posting to {url}")


def actions(client: TestClient, ref: str) -> list[dict[str, object]]:
    answer = client.get(f"/api/v1/risks/{ref}/treatment-actions")
    assert answer.status_code == 200, answer.text
    items: list[dict[str, object]] = answer.json()["items"]
    return items


def test_actions_are_added_and_moved_on_to_done(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client)
    assert (
        client.post(f"/api/v1/risks/{ref}/controls", json={"title": "Flood barriers", "owner": "it"}).status_code == 201
    )
    writer = signed(Role.write)
    page = writer.client.get(f"/console/risks/{ref}").text
    assert "No treatment action yet." in page
    add = f"/console/risks/{ref}/treatment-actions"
    control = form_fields(page, add)
    assert control["status"] == "planned" and '<option value="1">C-0001 Flood barriers</option>' in page
    added = writer.post(add, {**ACTION, "control_id": "1", "control_effect": "creates"})
    assert location(added) == f"/console/risks/{ref}#treatment-plan"
    [action] = actions(client, ref)
    assert action["cost"] == {"currency": "EUR", "amount": "12500.00"} and action["control_id"] == 1
    assert action["created_by"] == writer.email and action["description"] == "Both loading bays"
    second = writer.post(
        add, {**ACTION, "title": "Sandbags", "cost.amount": "", "cost.currency": "", "due_date": "2020-01-31"}
    )
    assert location(second)
    page = writer.client.get(f"/console/risks/{ref}").text
    plan = page.split('data-figure="plan">')[1].split("</dl>")[0]
    assert "2 in all: 2 open, 1 overdue, 0 done, 0 cancelled" in plan and "€12,500.00" in plan
    assert "2020-01-31: Sandbags (facilities@example.org) <strong>overdue</strong>" in plan
    row = page.split('id="action-1"')[1].split("</tr>")[0]
    assert "€12,500.00" in row and "C-0001 (creates)" in row and "planned" in row
    url = f"/console/risks/{ref}/treatment-actions/1"
    start = button_form(row, url, "Start “Install flood barriers”")
    assert start == {"csrf_token": writer.csrf, "status": "in-progress", "etag": '"1"'}
    assert location(writer.post(url, start)) == f"/console/risks/{ref}#action-1"
    assert actions(client, ref)[0]["status"] == "in-progress"
    stale = writer.post(url, {"status": "done", "etag": '"1"'})
    assert stale.status_code == 412 and "Treatment action 1 has changed since you read it" in stale.text
    row = writer.client.get(f"/console/risks/{ref}").text.split('id="action-1"')[1].split("</tr>")[0]
    assert "Start" not in row
    done = button_form(row, url, "Mark “Install flood barriers” done")
    assert done["status"] == "done" and done["etag"] == '"2"'
    assert location(writer.post(url, done))
    finished = actions(client, ref)[0]
    assert finished["status"] == "done" and finished["closed_by"] == writer.email
    row = writer.client.get(f"/console/risks/{ref}").text.split('id="action-1"')[1].split("</tr>")[0]
    assert "Final: add a new action instead" in row and 'method="post"' not in row


def test_a_cancellation_needs_a_reason_and_completing_the_plan_asks_for_reassessment(
    client: TestClient, signed: SignedFactory
) -> None:
    ref = add_risk(client)
    writer = signed(Role.write)
    for title in ("Barriers", "Pumps"):
        assert location(writer.post(f"/console/risks/{ref}/treatment-actions", {**ACTION, "title": title}))
    url = f"/console/risks/{ref}/treatment-actions/2"
    bare = writer.post(url, {"status": "cancelled", "etag": '"1"'})
    assert bare.status_code == 422 and "Say why the action is cancelled." in bare.text
    assert '<p class="field-error" id="action-2-reason-error">required to cancel an action</p>' in bare.text
    assert re.search(r"<details open>\s*<summary>Cancel “Pumps”</summary>", bare.text)
    assert location(writer.post(url, {"status": "cancelled", "etag": '"1"', "cancellation_reason": "Barriers suffice"}))
    assert location(writer.post(f"/console/risks/{ref}/treatment-actions/1", {"status": "done", "etag": '"1"'}))
    page = writer.client.get(f"/console/risks/{ref}").text
    plan = page.split('data-figure="plan">')[1].split("</dl>")[0]
    assert "completed" in plan and "2 in all: 0 open, 0 overdue, 1 done, 1 cancelled" in plan
    assert "cancelled" in page.split('id="action-2"')[1] and "Barriers suffice" in page.split('id="action-2"')[1]
    history = client.get(f"/api/v1/risks/{ref}/history").json()["items"]
    assert history[-1]["action"] == "reassessment_requested" and risk(client, ref)["overdue"] is True


def test_a_refused_action_keeps_what_was_typed(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client)
    writer = signed(Role.write)
    add = f"/console/risks/{ref}/treatment-actions"
    decimals = writer.post(add, {**ACTION, "cost.amount": "10.123"})
    assert decimals.status_code == 422 and "EUR amounts have at most 2 decimal places" in decimals.text
    assert '<p class="field-error" id="e-cost">' in decimals.text
    typed = form_fields(decimals.text, add)
    assert typed["cost.amount"] == "10.123" and typed["title"] == ACTION["title"]
    effect = writer.post(add, {**ACTION, "control_effect": "improves"})
    assert effect.status_code == 422 and "A control effect needs the control it applies to." in effect.text
    assert '<p class="field-error" id="e-control_id">required with control_effect</p>' in effect.text
    assert actions(client, ref) == []


def test_readers_and_closed_risks_get_no_plan_forms(client: TestClient, signed: SignedFactory) -> None:
    ref = add_risk(client)
    made = client.post(
        f"/api/v1/risks/{ref}/treatment-actions", json={"title": "Pumps", "owner": "ops", "due_date": "2030-01-01"}
    )
    assert made.status_code == 201, made.text
    reader = signed(Role.read)
    page = reader.client.get(f"/console/risks/{ref}").text
    assert "Pumps" in page and "Add an action" not in page and "Mark “Pumps” done" not in page
    assert reader.post(f"/console/risks/{ref}/treatment-actions", ACTION).status_code == 403
    assert reader.post(f"/console/risks/{ref}/treatment-actions/1", {"status": "done"}).status_code == 403
    assert client.post(f"/api/v1/risks/{ref}/close", json={"reason": "gone"}).status_code == 200
    writer = signed(Role.write)
    assert "Add an action" not in writer.client.get(f"/console/risks/{ref}").text
    closed = writer.post(f"/console/risks/{ref}/treatment-actions/1", {"status": "done"})
    assert closed.status_code == 409 and "reopen it before changing its treatment plan" in closed.text
    assert actions(client, ref)[0]["status"] == "planned"
