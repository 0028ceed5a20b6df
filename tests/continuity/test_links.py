"""Risks linked to processes and assets over HTTP: set, added and removed, each change in the risk's history and
event and in the process's or asset's history."""

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Keys
from tests.continuity.support import PLURAL, events, history, make_asset, make_process, make_risk
from tests.helpers import assert_problem


@pytest.mark.parametrize("kind", ["process", "asset"])
def test_links_are_added_set_and_removed_with_history(client: TestClient, keys: Keys, kind: str) -> None:
    make = make_process if kind == "process" else make_asset
    first, second, third = (make(client, key) for key in ("first-one", "second-one", "third-one"))
    risk = make_risk(client, "Payroll run fails")
    path = f"/api/v1/risks/{risk['reference']}/{PLURAL[kind]}"
    added = client.post(path, json={kind: "first-one"})
    assert added.status_code == 201, added.text
    assert [r["reference"] for r in added.json()[PLURAL[kind]]] == [first["reference"]]
    again = client.post(path, json={kind: first["reference"]})
    assert again.status_code == 200 and again.json() == added.json()  # linked already: nothing changed
    read = client.get(path, headers=keys.headers("read"))
    assert read.json() == {"risk": risk["reference"], PLURAL[kind]: added.json()[PLURAL[kind]]}
    stale = read.headers["etag"]
    put = client.put(path, json={PLURAL[kind]: ["second-one", "third-one"]}, headers={"If-Match": stale})
    assert put.status_code == 200, put.text
    assert [r["key"] for r in put.json()[PLURAL[kind]]] == ["second-one", "third-one"]
    assert put.headers["etag"] != stale
    assert_problem(client.put(path, json={PLURAL[kind]: []}, headers={"If-Match": stale}), 412)
    assert client.delete(f"{path}/third-one").status_code == 204
    assert_problem(client.delete(f"{path}/third-one"), 404)
    assert [r["key"] for r in client.get(path).json()[PLURAL[kind]]] == ["second-one"]

    changes = [e["changes"] for e in history(client, f"/api/v1/risks/{risk['reference']}") if e["action"] != "created"]
    assert changes == [
        {PLURAL[kind]: {"old": [], "new": [first["reference"]]}},
        {PLURAL[kind]: {"old": [first["reference"]], "new": [second["reference"], third["reference"]]}},
        {PLURAL[kind]: {"old": [second["reference"], third["reference"]], "new": [second["reference"]]}},
    ]
    announced = [e["changes"] for e in events(client, "risk.updated", risk["reference"])]
    assert announced == changes
    assert [(e["action"], e["changes"]) for e in history(client, f"/api/v1/{PLURAL[kind]}/{third['reference']}")][
        1:
    ] == [
        ("risk.linked", {"risk": {"old": None, "new": risk["reference"]}}),
        ("risk.unlinked", {"risk": {"old": risk["reference"], "new": None}}),
    ]
    # a link changes no field of the risk: its version (and ETag) stays
    assert client.get(f"/api/v1/risks/{risk['reference']}").json()["version"] == 1


def test_links_are_checked(client: TestClient, keys: Keys) -> None:
    make_process(client, "payroll")
    make_process(client, "billing")
    make_asset(client, "old-site", kind="site")
    risk = make_risk(client, "Payroll run fails")
    path = f"/api/v1/risks/{risk['reference']}"
    assert_problem(client.post(f"{path}/processes", json={"process": "nothing"}), 422, "body.process")
    body = assert_problem(client.put(f"{path}/processes", json={"processes": ["payroll", "P-0001", "x"]}), 422)
    assert {e["field"]: e["message"] for e in body["errors"]} == {
        "body.processes.1": "P-0001 is named twice", "body.processes.2": "no process has the reference or key 'x'",
    }  # fmt: skip
    assert_problem(client.put(f"{path}/processes", json={"processes": ["a"] * 101}), 422, "body.processes")
    assert client.post("/api/v1/assets/old-site/archive").status_code == 200
    assert_problem(client.post(f"{path}/assets", json={"asset": "old-site"}), 422, "body.asset")
    assert_problem(client.post(f"{path}/processes", json={"process": "payroll"}, headers=keys.headers("read")), 403)
    assert_problem(client.get("/api/v1/risks/R-9999/processes"), 404)
    assert client.get(f"{path}/processes").json()["processes"] == []  # nothing was linked

    assert client.post(f"{path}/processes", json={"process": "payroll"}).status_code == 201
    closed = client.post(f"{path}/close", json={"reason": "outsourced"})
    assert closed.status_code == 200, closed.text
    assert_problem(client.post(f"{path}/processes", json={"process": "billing"}), 409)
    assert_problem(client.delete(f"{path}/processes/payroll"), 409)
    assert [p["key"] for p in client.get(f"{path}/processes").json()["processes"]] == ["payroll"]
