"""A quarterly review in a real browser: an admin opens the cycle; an owner whose language is Chinese reviews their
risks one after another (reviewed, reassessed, proposed for closure); the admin closes the cycle and downloads
its workbook, which lists the reviews."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.config import Settings
from riskops.db import Database
from riskops.reviews import cycles
from riskops.risks import service as risks
from riskops.risks.models import RiskCreate
from riskops.risks.ratings import Rating
from riskops.users import service as users
from riskops.users.models import UserUpdate
from tests.console.conftest import Screens, sign_in_page
from tests.users.conftest import add_user

# A browser test costs tens of seconds: each runs on one database, the browser tests between them on both (the
# page tests in process run every page on both).
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

OWNER, ADMIN = "li.lei@example.org", "admin@example.org"
CHINESE_DATE = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日")


def _owner_with_risks(engine: Engine) -> list[str]:
    """A Chinese-speaking owner in Shanghai with three risks (two under their e-mail, one under their name), and a
    risk of someone else's."""
    user_id = add_user(engine, OWNER, Role.write)
    with Session(engine) as session:
        change = UserUpdate(language="zh-CN", time_zone="Asia/Shanghai", display_name="李雷")
        users.update_user(session, user_id, change, actor="test")
        session.commit()
    add_user(engine, ADMIN, Role.admin)
    who = Principal(key_id=0, name="test", role=Role.admin)
    references = []
    with Database(engine).write() as session:
        for title, owner in (("机房进水", OWNER), ("Supplier insolvent", "李雷"), ("Old fax line", OWNER.upper()),
                             ("Someone else's", "someone@example.org")):  # fmt: skip
            data = RiskCreate(title=title, category="operations", owner=owner, inherent=Rating(likelihood=3, impact=4))
            references.append(f"R-{risks.add_risk(session, data, who, Settings()):04d}")
    return references[:3]


def _review(page: Page, screens: Screens, outcome: str, comment: str, name: str) -> None:
    page.get_by_label(outcome).check()
    page.get_by_label("评论").fill(comment)
    screens.shot(page, name)
    page.get_by_role("button", name="记录评审").click()


def test_an_owner_reviews_in_chinese_and_an_admin_closes_and_downloads(
    served: str, engine: Engine, browser: Browser, screens: Screens, tmp_path: Path
) -> None:
    first, second, third = _owner_with_risks(engine)
    cycle = cycles.cycle_id_for(datetime.now(UTC), 1)
    admin = browser.new_context()
    owner = browser.new_context()
    try:
        # The admin opens the quarter's cycle from the console.
        page = admin.new_page()
        sign_in_page(page, served, ADMIN)
        expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
        screens.shot(page, "admin-dashboard")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").click()
        expect(page.get_by_label("Quarter")).to_have_value(cycle)
        screens.shot(page, "reviews")
        page.get_by_role("button", name="Open the review cycle").click()
        expect(page.get_by_role("heading", name=f"Review cycle {cycle}", level=1)).to_be_visible()
        expect(page.get_by_role("row", name=re.compile(r"li\.lei@example\.org 0 of 2"))).to_be_visible()
        screens.shot(page, "cycle-open")

        # The owner sees the console in Chinese, and their tasks on the dashboard.
        mine = owner.new_page()
        sign_in_page(mine, served, OWNER)
        expect(mine.get_by_role("heading", name="仪表板", level=1)).to_be_visible()
        expect(mine.get_by_role("heading", name="我的工作")).to_be_visible()
        screens.shot(mine, "owner-dashboard")
        mine.get_by_role("link", name="可能性 3，影响 4，等级 high：未关闭风险 4 个").click()  # a heat-map cell
        expect(mine.get_by_role("heading", name="固有热力图：可能性 3，影响 4", level=1)).to_be_visible()
        expect(mine.locator("tbody tr")).to_have_count(4)
        screens.shot(mine, "heat-map-cell")
        mine.go_back()
        mine.get_by_role("link", name=f"评审周期 {cycle}：我有 3 个风险待评审").click()
        expect(mine.get_by_role("heading", name=f"我在 {cycle} 的评审", level=1)).to_be_visible()
        expect(mine.get_by_text("已评审 0 / 3。")).to_be_visible()
        assert CHINESE_DATE.search(mine.get_by_text("请在").inner_text())  # the cycle's end, as China writes dates
        expect(mine.get_by_role("heading", name=f"{first}: 机房进水")).to_be_visible()
        _review(mine, screens, "已评审", "评级仍然准确。", "review-first")

        expect(mine.get_by_text(f"{first} 已记录：已评审。")).to_be_visible()
        expect(mine.get_by_role("heading", name=f"{second}: Supplier insolvent")).to_be_visible()
        mine.get_by_label("重新评估").check()
        inherent = mine.get_by_role("group", name="新的固有评级")
        inherent.get_by_label("可能性").select_option("2")
        inherent.get_by_label("影响").select_option("2")
        expect(inherent.locator("output")).to_have_text("4 low")  # the domain's score for 2 x 2, previewed
        _review(mine, screens, "重新评估", "供应商已更换。", "review-second")

        expect(mine.get_by_text(f"{second} 已记录：重新评估。")).to_be_visible()
        expect(mine.get_by_role("heading", name=f"{third}: Old fax line")).to_be_visible()
        _review(mine, screens, "提议关闭", "传真线路已拆除。", "review-third")

        expect(mine.get_by_role("heading", name="全部完成")).to_be_visible()
        expect(mine.get_by_text("已评审 3 / 3。")).to_be_visible()
        screens.shot(mine, "all-done")

        # The admin closes the cycle (confirming) and downloads its workbook.
        page.reload()
        expect(page.get_by_role("row", name=re.compile(r"li\.lei@example\.org 2 of 2 1"))).to_be_visible()
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Close the cycle").click()
        expect(page.locator("[data-state]")).to_have_text("Closed")
        expect(page.get_by_role("button", name="Close the cycle")).to_have_count(0)
        screens.shot(page, "cycle-closed")
        with page.expect_download() as download:
            page.get_by_role("link", name="Download XLSX").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
    finally:
        admin.close()
        owner.close()
    assert saved.name == f"riskops-review-{cycle}.xlsx"
    sheet = load_workbook(saved, read_only=True)["Register"]
    rows = list(sheet.iter_rows(values_only=True))
    columns = rows[0]
    outcomes = {row[columns.index("reference")]: row[columns.index("review_in_cycle")] for row in rows[1:]}
    assert {ref: outcomes[ref] for ref in (first, second, third)} == {
        first: "reviewed",
        second: "reassessed",
        third: "proposed-closure",
    }
    [reassessed] = [row for row in rows[1:] if row[columns.index("reference")] == second]
    assert reassessed[columns.index("inherent_score")] == 4
