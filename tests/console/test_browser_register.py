"""The register in a real browser against `riskops serve`: log a risk watching its level previewed, find it with the
register's filters, and edit it at the same time as someone else without losing either change."""

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.apikeys.models import Role
from riskops.risks import service
from riskops.risks.models import RiskCreate
from riskops.risks.ratings import Rating
from tests.conftest import SETTINGS, WRITER
from tests.console.conftest import Screens, sign_in_page
from tests.users.conftest import add_user

# A browser test costs tens of seconds: each runs on one database, the browser tests between them on both (the
# page tests in process run every page on both).
pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def signed_in_page(browser: Browser, base: str, email: str) -> Page:
    page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    sign_in_page(page, base, email)
    return page


def test_log_find_and_edit_a_risk_with_someone_else(
    served: str, engine: Engine, browser: Browser, screens: Screens
) -> None:
    add_user(engine, "ana@example.org", Role.write)
    add_user(engine, "ben@example.org", Role.write)
    with Session(engine) as session:
        service.create_risk(
            session,
            RiskCreate(title="Printer toner runs out", category="facilities", owner="ben",
                       inherent=Rating(likelihood=2, impact=1)),
            WRITER, SETTINGS,
        )  # fmt: skip
        session.commit()
    ana = signed_in_page(browser, served, "ana@example.org")
    ben = signed_in_page(browser, served, "ben@example.org")
    try:
        # Log a risk: the preview follows the likelihood and impact chosen.
        ana.goto(f"{served}/console/risks/new")
        ana.get_by_label("Title", exact=True).fill("Flooded server room")
        ana.get_by_label("Description", exact=True).fill("The basement floods after heavy rain.")
        ana.get_by_label("Category", exact=True).fill("technology")
        ana.get_by_label("Owner", exact=True).fill("ana@example.org")
        ana.get_by_label("Tags", exact=True).fill("water, dc")
        preview = ana.locator('output[data-score-output="inherent."]')
        expect(preview).to_have_text("choose a likelihood and an impact")
        ana.get_by_label("Inherent likelihood").select_option("1")
        ana.get_by_label("Inherent impact").select_option("2")
        expect(preview).to_have_text("2 low")
        ana.get_by_label("Inherent likelihood").select_option("5")
        ana.get_by_label("Inherent impact").select_option("5")
        expect(preview).to_have_text("25 critical")
        screens.shot(ana, "new-risk-preview")
        ana.get_by_role("button", name="Log the risk").click()
        expect(ana).to_have_url(re.compile(r"/console/risks/R-0002$"))
        expect(ana.get_by_role("heading", level=1)).to_have_text("R-0002: Flooded server room")
        expect(ana.locator("p.actions .badge")).to_have_text("critical")
        expect(ana.get_by_role("img", name="Score of R-0002 over time")).to_be_visible()
        screens.shot(ana, "risk-page")

        # Find it in the register: the text filter shows it and not the other risk.
        ana.goto(f"{served}/console/risks")
        expect(ana.get_by_role("cell", name="Printer toner runs out")).to_be_visible()
        ana.get_by_label("Text in the title or description").fill("flood")
        ana.get_by_role("button", name="Filter").click()
        expect(ana.get_by_role("cell", name="Flooded server room")).to_be_visible()
        expect(ana.get_by_role("cell", name="Printer toner runs out")).to_have_count(0)
        screens.shot(ana, "register-filtered")

        # Both open the edit form; Ana saves first, Ben's save then meets her change and keeps his own.
        ana.goto(f"{served}/console/risks/R-0002/edit")
        ben.goto(f"{served}/console/risks/R-0002/edit")
        screens.shot(ben, "edit-form")
        ana.get_by_label("Title", exact=True).fill("Flooded server room (basement B2)")
        ana.get_by_role("button", name="Save the changes").click()
        expect(ana).to_have_url(re.compile(r"/console/risks/R-0002$"))
        ben.get_by_label("Owner", exact=True).fill("ben@example.org")
        ben.get_by_role("button", name="Save the changes").click()
        expect(ben.get_by_role("heading", name="Changed by someone else")).to_be_visible()
        expect(ben.get_by_role("alert")).to_contain_text("Risk R-0002 has changed since you read it")
        expect(ben.get_by_label("Owner", exact=True)).to_have_value("ben@example.org")
        expect(ben.get_by_label("Title", exact=True)).to_have_value("Flooded server room (basement B2)")
        screens.shot(ben, "edit-conflict")
        ben.get_by_role("button", name="Apply my changes to the new version").click()
        expect(ben).to_have_url(re.compile(r"/console/risks/R-0002$"))
        expect(ben.get_by_role("heading", level=1)).to_have_text("R-0002: Flooded server room (basement B2)")
        facts = ben.locator("#ratings dl")
        expect(facts).to_contain_text("ben@example.org")
        screens.shot(ben, "risk-after-both-edits")
        ben.set_viewport_size({"width": 360, "height": 740})  # a phone: the chart shrinks, nothing runs off the side
        chart = ben.get_by_role("img", name="Score of R-0002 over time").bounding_box()
        assert chart is not None and chart["width"] <= 360
        assert ben.evaluate("document.documentElement.scrollWidth") <= 360
        screens.shot(ben, "risk-at-phone-width")
    finally:
        ana.context.close()
        ben.context.close()
