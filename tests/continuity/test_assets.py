"""Assets over HTTP: kinds, owners and classifications, a hierarchy without cycles and of bounded depth, versions
and history, archive rather than delete."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import Keys
from tests.continuity.support import events, history, link, make_asset, make_process, make_risk
from tests.helpers import assert_problem, row_counts


def test_assets_form_a_hierarchy(client: TestClient, keys: Keys) -> None:
    site = make_asset(client, "fra-dc", kind="site", name="Frankfurt site", classification="internal")
    assert site["reference"] == "A-0001" and site["parent"] is None and site["classification"] == "internal"
    system = make_asset(client, "hr-db", parent="fra-dc", classification="confidential")
    assert system["parent"] == {
        "reference": "A-0001", "key": "fra-dc", "name": "Frankfurt site", "status": "active", "kind": "site"
    }  # fmt: skip
    make_asset(client, "salaries", kind="information", parent="A-0002", classification="restricted")
    make_asset(client, "cloud-host", kind="supplier")
    reader = keys.headers("read")
    parts = client.get("/api/v1/assets", params={"parent": "fra-dc"}, headers=reader).json()["items"]
    assert [a["key"] for a in parts] == ["hr-db"]
    suppliers = client.get("/api/v1/assets", params={"kind": "supplier"}, headers=reader).json()["items"]
    assert [a["key"] for a in suppliers] == ["cloud-host"]
    response = client.get("/api/v1/assets/hr-db", headers=reader)
    assert response.json() == system and response.headers["etag"] == '"1"'
    [created] = history(client, "/api/v1/assets/A-0002")
    assert created["entity_type"] == "asset" and created["changes"]["parent"] == {"old": None, "new": "A-0001"}
    assert events(client, "asset.created", "A-0003")[0]["key"] == "salaries"
    assert_problem(client.get("/api/v1/assets", params={"parent": "nowhere"}), 404)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kind": "building"}, "body.kind"),
        ({"classification": "secret"}, "body.classification"),
        ({"parent": "nowhere"}, "body.parent"),
        ({"key": "a-1"}, "body.key"),
        ({"description": "x" * 20001}, "body.description"),
        ({"parent": "x" * 71}, "body.parent"),
        ({"owner": None}, "body.owner"),
    ],
)
def test_a_bad_field_is_422_naming_it_and_writes_nothing(
    client: TestClient, engine: Engine, overrides: dict[str, Any], field: str
) -> None:
    counts = row_counts(engine)
    body = {"key": "hr-db", "kind": "system", "name": "HR database", "owner": "it", **overrides}
    assert_problem(client.post("/api/v1/assets", json=body), 422, field)
    assert row_counts(engine) == counts


def test_the_hierarchy_has_no_cycle(client: TestClient) -> None:
    make_asset(client, "fra-dc", kind="site")
    make_asset(client, "hr-db", parent="fra-dc")
    make_asset(client, "salaries", kind="information", parent="hr-db")
    body = assert_problem(client.patch("/api/v1/assets/fra-dc", json={"parent": "salaries"}), 422, "body.parent")
    assert "fra-dc -> salaries -> hr-db -> fra-dc" in body["errors"][0]["message"]
    assert_problem(client.patch("/api/v1/assets/fra-dc", json={"parent": "fra-dc"}), 422, "body.parent")
    moved = client.patch("/api/v1/assets/salaries", json={"parent": "fra-dc"})
    assert moved.status_code == 200 and moved.json()["parent"]["key"] == "fra-dc" and moved.json()["version"] == 2
    top = client.patch("/api/v1/assets/salaries", json={"parent": None}, headers={"If-Match": '"2"'})
    assert top.status_code == 200 and top.json()["parent"] is None
    assert_problem(client.patch("/api/v1/assets/salaries", json={"name": "X"}, headers={"If-Match": '"2"'}), 412)
    actions = [(e["action"], e["changes"].get("parent")) for e in history(client, "/api/v1/assets/salaries")]
    assert actions[1:] == [("updated", {"old": "A-0002", "new": "A-0001"}), ("updated", {"old": "A-0001", "new": None})]


def test_the_hierarchy_is_at_most_eight_levels_deep(client: TestClient) -> None:
    make_asset(client, "level-1", kind="site")
    for depth in range(2, 9):
        make_asset(client, f"level-{depth}", parent=f"level-{depth - 1}")
    body = {"key": "level-9", "kind": "information", "name": "Too deep", "owner": "it", "parent": "level-8"}
    problem = assert_problem(client.post("/api/v1/assets", json=body), 422, "body.parent")
    assert "9 levels deep; at most 8" in problem["errors"][0]["message"]
    # moving a subtree counts its own depth too: level-7 (with level-8 under it) under level-8's place
    make_asset(client, "other-root", kind="site")
    assert_problem(client.patch("/api/v1/assets/other-root", json={"parent": "level-8"}), 422, "body.parent")
    subtree = client.patch("/api/v1/assets/level-7", json={"parent": "other-root"})
    assert subtree.status_code == 200, subtree.text


def test_only_an_asset_nothing_links_to_is_deleted(client: TestClient) -> None:
    make_asset(client, "fra-dc", kind="site")
    make_asset(client, "hr-db", parent="fra-dc")
    make_asset(client, "bureau", kind="supplier")
    make_process(client, "payroll", depends_on={"suppliers": ["bureau"]})
    risk = make_risk(client, "Bureau goes bust")
    link(client, risk, "asset", "bureau")
    assert "A-0002" in assert_problem(client.delete("/api/v1/assets/fra-dc"), 409, "assets")["errors"][0]["message"]
    problem = assert_problem(client.delete("/api/v1/assets/bureau"), 409)
    assert {e["field"] for e in problem["errors"]} == {"processes", "risks"}
    archived = client.post("/api/v1/assets/bureau/archive")
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert_problem(client.patch("/api/v1/assets/bureau", json={"name": "Bureau"}), 409)
    body = {"key": "hr-bureau", "kind": "system", "name": "X", "owner": "it", "parent": "bureau"}
    assert_problem(client.post("/api/v1/assets", json=body), 422, "body.parent")
    assert client.delete("/api/v1/assets/hr-db").status_code == 204
    assert client.delete("/api/v1/assets/fra-dc").status_code == 204
    assert_problem(client.get("/api/v1/assets/fra-dc"), 404)
    assert [e["key"] for e in events(client, "asset.deleted", "A-0001")] == ["fra-dc"]
