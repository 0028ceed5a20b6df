"""A crisis worked in real browsers against `riskops serve`: a writer activates the shipped ransomware playbook from
its page and works it in the incident room at a desk, while a second person has the room open on a phone; each sees
the other's changes live, without reloading, until the incident is closed with its summary."""

import re

import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect
from sqlalchemy import Engine

from riskops.apikeys.models import Role
from tests.console.conftest import Screens, sign_in_page
from tests.users.conftest import add_user

# A browser test costs tens of seconds: each runs on one database, the browser tests between them on both (the
# page tests in process run every page on both).
pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

LIVE = 15_000  # ms: the room polls every 3 s; a change shows within a few rounds
PHONE: ViewportSize = {"width": 390, "height": 844}


def submit(page: Page, button: Locator) -> None:
    """Click a form's button and wait for the page the POST redirects to."""
    with page.expect_navigation():
        button.click()


def test_a_ransomware_crisis_from_activation_to_close_in_two_browsers(
    served: str, browser: Browser, screens: Screens, engine: Engine
) -> None:
    add_user(engine, "lead@example.org", Role.write)
    add_user(engine, "scribe@example.org", Role.write)
    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        lead, scribe = desk.new_page(), phone.new_page()
        sign_in_page(lead, served, "lead@example.org")
        sign_in_page(scribe, served, "scribe@example.org")

        # The library, the plan, and its activation.
        lead.goto(f"{served}/console/playbooks")
        expect(lead.get_by_role("heading", name="Ransomware or destructive cyber attack")).to_be_visible()
        screens.shot(lead, "playbooks")
        lead.get_by_role("link", name="Ransomware or destructive cyber attack").click()
        expect(lead.get_by_role("heading", level=1)).to_have_text("Ransomware or destructive cyber attack")
        expect(lead.locator("svg.plan-chart circle")).to_have_count(14)
        screens.shot(lead, "plan")
        lead.get_by_role("link", name="Activate this playbook").click()
        expect(lead.get_by_label("Title")).to_have_value("Ransomware or destructive cyber attack")
        lead.get_by_label("Title").fill("Ransomware on the file servers")
        lead.get_by_label("Description").fill("Ransom notes on FS-01 and FS-02; shares renamed to .lock")
        screens.shot(lead, "activate")
        submit(lead, lead.get_by_role("button", name="Activate the playbook"))
        expect(lead).to_have_url(re.compile(r"/console/incidents/INC-0001$"))
        expect(lead.get_by_role("heading", level=1)).to_have_text("INC-0001 · Ransomware on the file servers")
        expect(lead.locator("#status")).to_contain_text("declared")
        expect(lead.locator("#deadline-rto")).to_contain_text("left")
        screens.shot(lead, "room-declared")

        # The scribe opens the room on a phone: usable at 390 px, nothing wider than the screen.
        room = lead.url
        scribe.goto(room)
        expect(scribe.locator("#status")).to_contain_text("declared")
        assert scribe.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screens.shot(scribe, "room-phone")

        # The lead fills a role and completes the first step with a note: the phone sees it without a reload.
        commander = lead.locator("#role-incident-commander")
        commander.get_by_label("Person for this role").fill("lead@example.org")
        submit(lead, commander.get_by_role("button", name="Assign"))
        expect(lead.locator("#role-incident-commander")).to_contain_text("lead@example.org")
        triage = lead.locator("#step-triage-and-declare")
        triage.get_by_label("Note (optional)").fill("SEV1 confirmed, bridge open on +1 555 0100")
        submit(lead, triage.get_by_role("button", name="Complete"))
        expect(scribe.locator("#timeline")).to_contain_text("SEV1 confirmed, bridge open on +1 555 0100", timeout=LIVE)
        expect(scribe.locator("#step-triage-and-declare")).to_contain_text("done", timeout=LIVE)
        expect(scribe.locator("#role-incident-commander")).to_contain_text("lead@example.org", timeout=LIVE)

        # The scribe adds a note from the phone: the desk sees it without a reload.
        scribe.get_by_label("Note", exact=True).fill("Insurer hotline called, claim 77-1024")
        submit(scribe, scribe.get_by_role("button", name="Add the note"))
        expect(lead.locator("#timeline")).to_contain_text("Insurer hotline called, claim 77-1024", timeout=LIVE)
        screens.shot(scribe, "room-phone-note")

        # A waiting step says what it waits for; one step is skipped with a reason, the others completed.
        waiting = lead.locator("#step-restore-services")
        expect(waiting).to_contain_text("Waits for")
        expect(waiting.get_by_role("button", name="Start")).to_have_count(0)
        backups = lead.locator("#step-protect-backups")
        backups.get_by_text("Skip this step").click()
        backups.get_by_label("Reason for skipping").fill("Backups are offline tapes, untouched")
        submit(lead, backups.get_by_role("button", name="Skip"))
        expect(lead.locator("#step-protect-backups")).to_contain_text("Backups are offline tapes, untouched")
        expect(scribe.locator("#timeline")).to_contain_text("skipped: Backups are offline tapes", timeout=LIVE)
        complete = lead.locator("#steps").get_by_role("button", name="Complete")
        while complete.count():
            submit(lead, complete.first)
        expect(lead.locator("#steps")).not_to_contain_text("to do")
        screens.shot(lead, "room-steps-done")

        # The required communications are sent, then the incident moves through its states.
        mark_sent = lead.locator("#communications").get_by_role("button", name="Mark sent")
        expect(mark_sent).to_have_count(7)
        while mark_sent.count():
            submit(lead, mark_sent.first)
        expect(lead.locator("#communications")).not_to_contain_text("not sent")
        moves = (("Acknowledge", "acknowledged"), ("Mark mitigated", "mitigated"), ("Mark resolved", "resolved"))
        for move, state in moves:
            submit(lead, lead.locator("#status").get_by_role("button", name=move))
            expect(lead.locator("#status")).to_contain_text(state)
            expect(scribe.locator("#status")).to_contain_text(state, timeout=LIVE)
        expect(lead.locator("#status").get_by_role("button")).to_have_text(["Reopen"])
        expect(lead.locator("#deadline-rto")).to_contain_text("met")
        screens.shot(lead, "room-resolved")

        # Closed with the post-incident summary.
        lead.get_by_role("link", name="Close with a summary").click()
        expect(lead.get_by_role("heading", level=1)).to_have_text("Close INC-0001")
        lead.get_by_label("What happened").fill("Ransomware encrypted two file servers through a phished VPN account.")
        lead.get_by_label("Impact").fill("File shares unavailable for six hours; no data lost.")
        lead.get_by_label("Root cause").fill("VPN without multi-factor authentication.")
        first_action = lead.get_by_role("group", name="Action 1")
        first_action.get_by_label("Title").fill("Enforce MFA on the VPN")
        first_action.get_by_label("Owner").fill("security lead")
        screens.shot(lead, "close")
        submit(lead, lead.get_by_role("button", name="Close the incident"))
        expect(lead.locator("#status")).to_contain_text("closed")
        expect(lead.locator("#summary")).to_contain_text("VPN without multi-factor authentication.")
        expect(lead.get_by_role("button", name="Add the note")).to_have_count(0)
        screens.shot(lead, "room-closed")
        expect(scribe.locator("#status")).to_contain_text("closed", timeout=LIVE)
        expect(scribe.locator("#summary")).to_contain_text("no data lost", timeout=LIVE)
        screens.shot(scribe, "room-phone-closed")

        lead.goto(f"{served}/console/incidents?state=closed")
        expect(lead.get_by_role("link", name="INC-0001 Ransomware on the file servers")).to_be_visible()
        screens.shot(lead, "incidents")
    finally:
        desk.close()
        phone.close()
