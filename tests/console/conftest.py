"""The console under test: an in-process browser-like client per role, and a real `riskops serve` driven by Debian's
Chromium through Playwright, with a screenshot of every page a browser test looks at."""

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.apikeys.models import Role
from riskops.app import create_app
from riskops.config import Settings
from riskops.users import service as users
from riskops.users.models import Language, UserUpdate
from tests.helpers import running_service
from tests.users.conftest import PASSWORD, add_user

CHROMIUM = os.environ.get("RISKOPS_CHROMIUM", "/usr/bin/chromium")
# Where the browser tests leave a PNG of each page they look at (make test prints nothing else about them).
SCREENSHOTS = Path(os.environ.get("RISKOPS_SCREENSHOTS", Path(__file__).resolve().parents[2] / "build" / "screenshots"))
SETTINGS = Settings(scheduler_enabled=False, sign_in_failure_delay_seconds=0, webhook_allowed_networks="127.0.0.0/8")
HTML = {"Accept": "text/html,application/xhtml+xml"}


@dataclass
class Signed:
    """An in-process browser signed in as a user: the client (cookies kept, redirects shown) and the CSRF token."""

    client: TestClient
    csrf: str
    email: str

    def post(self, url: str, data: dict[str, Any] | None = None) -> httpx.Response:
        """A form posted with the session's CSRF token, as the console's pages post them."""
        answer: httpx.Response = self.client.post(url, data={users.CSRF_FIELD: self.csrf, **(data or {})})
        return answer


@pytest.fixture
def signed(engine: Engine) -> Iterator[Callable[..., Signed]]:
    """signed(Role.write): a new user of that role, signed in on a client that asks for pages (Accept: text/html)."""
    clients: list[TestClient] = []

    def make(role: Role, email: str | None = None, language: Language = "en") -> Signed:
        email = email or f"{role.value}-{len(clients)}@example.org"
        user_id = add_user(engine, email, role)
        if language != "en":
            with Session(engine) as session:
                users.update_user(session, user_id, UserUpdate(language=language), actor="test")
                session.commit()
        client = TestClient(create_app(SETTINGS, engine=engine), follow_redirects=False, headers=HTML)
        client.__enter__()
        clients.append(client)
        answer = client.post("/console/sign-in", data={"email": email, "password": PASSWORD})
        assert answer.status_code == 303, answer.text
        token = client.get("/console/session", headers={"Accept": "application/json"}).json()["csrf_token"]
        return Signed(client, token, email)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


# ---- a real browser ----


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium (browsers cannot be downloaded here), headless; no sandbox, as CI runs as root."""
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield chromium
    chromium.close()


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`riskops serve` on the test's database, as people run it (the shipped playbooks synced at start)."""
    with running_service(database_url, tmp_path / "serve.log", ("RISKOPS_SCHEDULER_ENABLED", "false")) as base:
        yield base


class Screens:
    """Saves a full-page PNG under build/screenshots/<test>/NN-<name>.png."""

    def __init__(self, test_name: str):
        self.folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", test_name)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def shot(self, page: Page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000  # a real picture of a rendered page
        return path


@pytest.fixture
def screens(request: pytest.FixtureRequest) -> Screens:
    return Screens(request.node.name)


def sign_in_page(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/console/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/console/(\?.*)?$|.*/console/[a-z].*"))
