"""An admin brings a new user in and out again, in Chromium against `riskops serve`, on both databases: the user, the
set-password link in a second browser, the user's own API key, their language, and disabling them."""

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine

from riskops.apikeys.models import Role
from tests.console.conftest import Screens, sign_in_page
from tests.users.conftest import add_user

# A browser test costs tens of seconds: each runs on one database, the browser tests between them on both (the
# page tests in process run every page on both).
pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

NEW = "nia@example.org"
NEW_PASSWORD = "a long new password"
SECTIONS = [
    ("API keys", "API keys"), ("Webhooks", "Webhooks"), ("Integrations", "Integrations"),
    ("Escalation policies", "Escalation policies"), ("Risk matrix", "Risk matrix"),
    ("Calendar feed tokens", "Calendar feed tokens"),
]  # fmt: skip


def _user_row(page: Page, email: str) -> None:
    """Open the user's change panel on the users page."""
    page.get_by_text(f"Change {email}").click()


def test_an_admin_brings_a_user_in_and_disables_them(
    served: str, browser: Browser, screens: Screens, engine: Engine
) -> None:
    add_user(engine, "ada@example.org", Role.admin)
    admin_context = browser.new_context()
    user_context = browser.new_context()
    try:
        admin = admin_context.new_page()
        admin.on("dialog", lambda dialog: dialog.accept())  # the confirmation asked before disabling
        sign_in_page(admin, served, "ada@example.org")
        admin.goto(f"{served}/console/admin")
        expect(admin.get_by_role("heading", level=1)).to_have_text("Administration")
        screens.shot(admin, "admin-landing")
        for section, heading in SECTIONS:
            admin.get_by_role("link", name=section).first.click()
            expect(admin.get_by_role("heading", level=1)).to_have_text(heading)
            screens.shot(admin, heading.lower().replace(" ", "-"))

        admin.get_by_role("link", name="Users").first.click()
        form = admin.get_by_role("form", name="New user")
        form.get_by_label("E-mail").fill(NEW)
        form.get_by_label("Display name").fill("Nia Kim")
        form.get_by_label("Role").select_option("write")
        form.get_by_label("Time zone").fill("Asia/Shanghai")
        form.get_by_role("button", name="Create user").click()
        row = admin.get_by_role("row").filter(has_text=NEW)
        expect(row).to_contain_text("Nia Kim")
        expect(row).to_contain_text("Not set")
        screens.shot(admin, "users-with-the-new-user")

        _user_row(admin, NEW)
        row.get_by_role("button", name="Issue a set-password link").click()
        expect(admin.get_by_role("heading", level=1)).to_have_text(f"Set-password link for {NEW}")
        link = admin.locator("#secret-link").inner_text()
        assert "/console/set-password?token=" in link
        screens.shot(admin, "set-password-link-shown-once")

        user = user_context.new_page()
        user.goto(link)
        user.get_by_label("New password").fill(NEW_PASSWORD)
        screens.shot(user, "set-password-form")
        user.get_by_role("button", name="Set password").click()
        expect(user).to_have_url(re.compile(r".*/console/sign-in$"))
        sign_in_page(user, served, NEW, NEW_PASSWORD)

        user.goto(f"{served}/console/account")
        expect(user.get_by_role("heading", level=1)).to_have_text("Your account")
        user.get_by_label("Key name").fill("ci-bot")
        user.get_by_label("Key role").select_option("write")
        user.get_by_role("button", name="Create API key").click()
        expect(user.get_by_role("heading", level=1)).to_have_text("Your API key ci-bot")
        secret = user.locator("#secret-key").inner_text()
        expect(user.get_by_role("button", name="Copy: API key")).to_be_visible()
        screens.shot(user, "own-api-key-shown-once")
        bearer = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{served}/api/v1/risks", headers=bearer).status_code == 200

        user.get_by_role("link", name="Done: back to the previous page").click()
        expect(user.get_by_role("row").filter(has_text="ci-bot")).to_contain_text("Active")
        assert secret not in user.content()
        screens.shot(user, "account-with-the-key")
        user.get_by_label("Language").select_option("zh-CN")
        user.get_by_role("button", name="Save settings").click()
        expect(user.get_by_role("heading", level=1)).to_have_text("你的账户")
        expect(user.get_by_role("status")).to_have_text("已保存。")
        expect(user.get_by_role("navigation", name="主导航")).to_contain_text("风险登记册")
        expect(user.get_by_role("button", name="退出登录")).to_be_visible()
        screens.shot(user, "account-in-chinese")

        admin.goto(f"{served}/console/admin/users")
        _user_row(admin, NEW)
        admin.get_by_role("row").filter(has_text=NEW).get_by_role("button", name="Disable").click()
        expect(admin.get_by_role("row").filter(has_text=NEW)).to_contain_text("Disabled")
        screens.shot(admin, "users-with-the-user-disabled")

        user.reload()
        expect(user).to_have_url(re.compile(r".*/console/sign-in\?next=/console/account$"))
        expect(user.locator("#email")).to_be_visible()
        screens.shot(user, "sign-in-after-being-disabled")
        assert httpx.get(f"{served}/api/v1/risks", headers=bearer).status_code == 401
    finally:
        admin_context.close()
        user_context.close()
