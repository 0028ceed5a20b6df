"""/docs and /redoc in process: open like the health checks, their assets from the installed package with the
right types and cache headers, nothing added to the OpenAPI document. (tests/test_install.py loads them from an
installed wheel.)"""

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from riskops.app import create_app
from riskops.config import Settings
from riskops.docs import ASSETS

PAGES = {"/docs": ["swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"], "/redoc": ["redoc.standalone.js"]}


@pytest.fixture
def anonymous(tmp_path: Path) -> TestClient:
    """The app with no key at all (the docs need no database either)."""
    return TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'docs.db'}", scheduler_enabled=False)))


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_are_open_and_name_only_local_assets(anonymous: TestClient, page: str) -> None:
    html = anonymous.get(page)
    assert html.status_code == 200 and html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.headers["cache-control"] == "no-cache"  # they name the assets' versioned path: always revalidated
    assert re.findall(r"https?://", html.text) == []
    for asset in PAGES[page]:
        assert f'"{ASSETS}/{asset}"' in html.text
    assert "'/openapi.json'" in html.text or 'spec-url="/openapi.json"' in html.text
    assert anonymous.get("/api/v1/playbooks").status_code == 401  # while the API itself is not open


@pytest.mark.parametrize(
    ("asset", "content_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("redoc.standalone.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon.png", "image/png"),
    ],
)
def test_assets_are_typed_and_kept_by_browsers(anonymous: TestClient, asset: str, content_type: str) -> None:
    first = anonymous.get(f"{ASSETS}/{asset}")
    assert first.status_code == 200 and first.headers["content-type"].startswith(content_type)
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = anonymous.get(f"{ASSETS}/{asset}", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_nothing_beside_the_assets_is_served(anonymous: TestClient) -> None:
    """fastapi_offline's own code sits next to its static directory: a path that climbs out finds nothing."""
    for path in (
        f"{ASSETS}/../core.py",
        f"{ASSETS}/%2e%2e/core.py",
        f"{ASSETS}/missing.js",
        "/docs/assets/0.0.0/favicon.png",
    ):
        assert anonymous.get(path).status_code == 404, path


def test_the_openapi_document_does_not_list_the_docs(anonymous: TestClient) -> None:
    paths = anonymous.get("/openapi.json").json()["paths"]
    assert paths and not [p for p in paths if p.startswith(("/docs", "/redoc"))]


def test_behind_a_path_prefix_the_pages_name_the_prefixed_paths(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'docs.db'}", scheduler_enabled=False))
    html = TestClient(app, root_path="/riskops").get("/docs").text
    assert f'"/riskops{ASSETS}/swagger-ui-bundle.js"' in html and "'/riskops/openapi.json'" in html
