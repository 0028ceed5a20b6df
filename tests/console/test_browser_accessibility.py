"""Every kind of console page checked by axe-core (the engine behind most accessibility audits, shipped in the
axe-playwright-python package) in a real browser for WCAG 2.1 A and AA: labels, names, contrast, structure, in
English and Chinese, at desk and phone width."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Browser, Page, ViewportSize
from sqlalchemy import Engine
from sqlmodel import Session, select

from riskops.apikeys.models import Role
from riskops.reviews import cycles
from riskops.users import service as users
from riskops.users.models import Language, User, UserUpdate
from tests.conftest import ADMIN, SETTINGS, Keys
from tests.console.conftest import Screens, sign_in_page
from tests.helpers import risk_body
from tests.users.conftest import add_user

# A browser test costs tens of seconds: each runs on one database, the browser tests between them on both (the
# page tests in process run every page on both).
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
axe = Axe()


def violations(page: Page) -> list[str]:
    """What axe finds on the page with every folded part opened (the forms inside them count too): one line per
    rule broken, with the first places it is broken."""
    page.evaluate("document.querySelectorAll('details').forEach((part) => { part.open = true; })")
    found = axe.run(page, options=WCAG_21_AA).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at " + "; ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in found
    ]


@pytest.fixture
def seeded(served: str, engine: Engine, keys: Keys) -> Iterator[dict[str, str]]:
    """A register with a risk (with a control, an assessment, a treatment action, a process it threatens and an
    acceptance requested), an incident from the ransomware playbook, and an open review cycle, made through the
    API as any client would."""
    with httpx.Client(base_url=served, headers=keys.headers("admin")) as api:
        risk = api.post(
            "/api/v1/risks", json=risk_body(title="Ransomware on the file servers", owner="ann@example.org")
        )
        assert risk.status_code == 201, risk.text
        ref = risk.json()["reference"]
        control = {"title": "Offline backups", "owner": "ann@example.org", "status": "implemented"}
        assert api.post(f"/api/v1/risks/{ref}/controls", json=control).status_code == 201
        action = {
            "title": "Test the restore", "owner": "ann@example.org", "due_date": "2030-01-31",
            "cost": {"amount": "1500", "currency": "EUR"}, "control_id": 1, "control_effect": "improves",
        }  # fmt: skip
        assert api.post(f"/api/v1/risks/{ref}/treatment-actions", json=action).status_code == 201
        process = {"key": "file-sharing", "name": "File sharing", "owner": "it", "rto_minutes": "8h"}
        assert api.post("/api/v1/processes", json=process).status_code == 201
        assert api.post(f"/api/v1/risks/{ref}/processes", json={"process": "file-sharing"}).status_code == 201
        outside = risk_body(title="Region lost", inherent={"likelihood": 5, "impact": 5}, residual=None)
        assert api.post("/api/v1/risks", json=outside).status_code == 201  # on the dashboard, outside its appetite
        request = {"risks": [ref], "justification": "Offline backups suffice",
                   "expires_at": (datetime.now(UTC) + timedelta(days=180)).isoformat()}  # fmt: skip
        acceptance = api.post("/api/v1/acceptances", json=request)
        assert acceptance.status_code == 201, acceptance.text
        incident = api.post(
            "/api/v1/playbooks/ransomware/activate", json={"title": "Files encrypted", "risk_ids": [ref]}
        )
        assert incident.status_code == 201, incident.text
    with Session(engine) as session:
        cycle = cycles.open_cycle(session, "2026Q4", ADMIN, SETTINGS)
        session.commit()
        cycle_id = cycle.id
    yield {
        "risk": ref, "incident": str(incident.json()["id"]), "cycle": cycle_id,
        "acceptance": acceptance.json()["reference"],
    }  # fmt: skip


def test_every_kind_of_page_meets_wcag_2_1_aa(
    served: str, engine: Engine, browser: Browser, screens: Screens, seeded: dict[str, str]
) -> None:
    add_user(engine, "ann@example.org", Role.admin)
    pages = [
        "/console/", "/console/risks", "/console/risks/new", f"/console/risks/{seeded['risk']}",
        "/console/acceptances", f"/console/acceptances/{seeded['acceptance']}", f"/console/risks/{seeded['risk']}/edit",
        "/console/incidents", "/console/incidents/new",
        f"/console/incidents/{seeded['incident']}", f"/console/incidents/{seeded['incident']}/close",
        "/console/playbooks", "/console/playbooks/ransomware", "/console/playbooks/ransomware/activate",
        "/console/reviews", f"/console/reviews/{seeded['cycle']}", f"/console/reviews/{seeded['cycle']}/mine",
        "/console/account", "/console/admin", "/console/admin/users", "/console/admin/api-keys",
        "/console/admin/webhooks", "/console/admin/integrations", "/console/admin/escalation-policies",
        "/console/admin/matrix", "/console/admin/feed-tokens",
    ]  # fmt: skip
    found: dict[str, list[str]] = {}
    signed_out = browser.new_context()
    try:
        page = signed_out.new_page()
        page.goto(f"{served}/console/sign-in")
        found["sign-in"] = violations(page)
    finally:
        signed_out.close()
    runs: tuple[tuple[Language, ViewportSize], ...] = (
        ("en", {"width": 1280, "height": 900}), ("zh-CN", {"width": 390, "height": 844})
    )  # fmt: skip
    for language, viewport in runs:
        with Session(engine) as session:
            user = session.exec(select(User).where(User.email == "ann@example.org")).one()
            users.update_user(session, user.id, UserUpdate(language=language), actor="test")
            session.commit()
        context = browser.new_context(viewport=viewport)
        try:
            page = context.new_page()
            sign_in_page(page, served, "ann@example.org")
            for path in pages:
                answer = page.goto(f"{served}{path}")
                assert answer is not None and answer.status == 200, f"{path}: {answer.status if answer else None}"
                found[f"{language} {path}"] = violations(page)
            screens.shot(page, f"admin-feed-tokens-{language}")
        finally:
            context.close()
    broken = {where: lines for where, lines in found.items() if lines}
    assert not broken, "\n".join(f"{where}:\n  " + "\n  ".join(lines) for where, lines in broken.items())
    assert len(found) == 1 + 2 * len(pages)  # every page was checked
