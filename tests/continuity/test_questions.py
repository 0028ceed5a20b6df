"""The committee's questions: "which risks threaten payroll?" and "what depends on the Frankfurt site?", each
answer saying why."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Keys
from tests.continuity.support import link, make_asset, make_process, make_risk


@pytest.fixture
def estate(client: TestClient) -> dict[str, dict[str, Any]]:
    """A region holding the Frankfurt site holding the HR database; payroll depends on HR data (a process) and on
    a payroll bureau (a supplier), HR data on the HR database; reporting depends on payroll."""
    make_asset(client, "eu-central", kind="site", name="EU central region")
    make_asset(client, "fra-dc", kind="site", name="Frankfurt site", parent="eu-central")
    make_asset(client, "hr-db", name="HR database", parent="fra-dc")
    make_asset(client, "salaries", kind="information", name="Salary records", parent="hr-db")
    make_asset(client, "bureau", kind="supplier", name="Payroll bureau")
    make_process(client, "hr-data", name="HR data", depends_on={"assets": ["hr-db"]})
    make_process(client, "payroll", name="Payroll", depends_on={"processes": ["hr-data"], "suppliers": ["bureau"]})
    make_process(client, "reporting", name="Reporting", depends_on={"processes": ["payroll"]})
    risks = {
        "direct": make_risk(client, "Payroll run fails", residual={"likelihood": 1, "impact": 2}),
        "flood": make_risk(client, "Frankfurt site floods", residual={"likelihood": 3, "impact": 5}),
        "region": make_risk(client, "Region-wide power cut", residual={"likelihood": 1, "impact": 5}),
        "bureau": make_risk(client, "Bureau goes bust", residual={"likelihood": 2, "impact": 3}),
        "leak": make_risk(client, "Salary records leak", residual={"likelihood": 2, "impact": 2}),
        "unrelated": make_risk(client, "Office coffee runs out"),
        "closed": make_risk(client, "Old payroll system dies"),
    }
    link(client, risks["direct"], "process", "payroll")
    link(client, risks["flood"], "asset", "fra-dc")
    link(client, risks["region"], "asset", "eu-central")
    link(client, risks["bureau"], "asset", "bureau")
    link(client, risks["leak"], "asset", "salaries")
    link(client, risks["closed"], "process", "payroll")
    link(client, risks["flood"], "process", "hr-data")  # a second reason for the same risk
    closed = client.post(f"/api/v1/risks/{risks['closed']['reference']}/close", json={"reason": "replaced"})
    assert closed.status_code == 200, closed.text
    return risks


def test_which_risks_threaten_payroll(client: TestClient, keys: Keys, estate: dict[str, dict[str, Any]]) -> None:
    response = client.get("/api/v1/processes/payroll/risks", headers=keys.headers("read"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["process"]["reference"] == "P-0002"
    by_title = {r["title"]: r for r in answer["risks"]}
    # not the unrelated risk, not the closed one, nor a part of what payroll depends on (salary records)
    assert set(by_title) == {"Payroll run fails", "Frankfurt site floods", "Region-wide power cut", "Bureau goes bust"}
    assert [r["score"] for r in answer["risks"]] == sorted((r["score"] for r in answer["risks"]), reverse=True)
    assert [x["text"] for x in by_title["Payroll run fails"]["reasons"]] == ["linked to P-0002 Payroll itself"]
    assert [x["text"] for x in by_title["Bureau goes bust"]["reasons"]] == [
        "linked to A-0005 Payroll bureau: P-0002 Payroll depends on A-0005 Payroll bureau"
    ]
    flood = by_title["Frankfurt site floods"]["reasons"]
    assert [x["text"] for x in flood] == [
        "linked to P-0001 HR data: P-0002 Payroll depends on P-0001 HR data",
        "linked to A-0002 Frankfurt site: P-0002 Payroll depends on P-0001 HR data, which depends on A-0003 HR "
        "database, which is part of A-0002 Frankfurt site",
    ]
    assert [n["key"] for n in flood[1]["path"]] == ["payroll", "hr-data", "hr-db", "fra-dc"]
    assert flood[1]["linked_to"] == {
        "type": "asset", "reference": "A-0002", "key": "fra-dc", "name": "Frankfurt site", "kind": "site"
    }  # fmt: skip
    assert by_title["Region-wide power cut"]["reasons"][0]["linked_to"]["key"] == "eu-central"

    with_closed = client.get("/api/v1/processes/P-0002/risks", params={"include_closed": True}).json()
    assert "Old payroll system dies" in {r["title"] for r in with_closed["risks"]}
    upstream = client.get("/api/v1/processes/hr-data/risks").json()  # payroll's own risk does not reach HR data
    assert {r["title"] for r in upstream["risks"]} == {"Frankfurt site floods", "Region-wide power cut"}


def test_what_depends_on_the_frankfurt_site(client: TestClient, keys: Keys, estate: dict[str, dict[str, Any]]) -> None:
    response = client.get("/api/v1/assets/fra-dc/dependents", headers=keys.headers("read"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["asset"]["key"] == "fra-dc"
    assert [(a["node"]["key"], a["text"]) for a in answer["assets"]] == [
        ("hr-db", "A-0003 HR database is part of A-0002 Frankfurt site"),
        ("salaries", "A-0004 Salary records is part of A-0003 HR database, which is part of A-0002 Frankfurt site"),
    ]
    assert [(p["node"]["key"], [n["key"] for n in p["path"]]) for p in answer["processes"]] == [
        ("hr-data", ["hr-data", "hr-db", "fra-dc"]),
        ("payroll", ["payroll", "hr-data", "hr-db", "fra-dc"]),
        ("reporting", ["reporting", "payroll", "hr-data", "hr-db", "fra-dc"]),
    ]
    assert answer["processes"][1]["text"] == (
        "P-0002 Payroll depends on P-0001 HR data, which depends on A-0003 HR database, which is part of A-0002 "
        "Frankfurt site"
    )
    # the risks to the site: its own and the region's, not those of its parts
    assert [(r["title"], [x["linked_to"]["key"] for x in r["reasons"]]) for r in answer["risks"]] == [
        ("Frankfurt site floods", ["fra-dc"]), ("Region-wide power cut", ["eu-central"]),
    ]  # fmt: skip
    leaf = client.get("/api/v1/assets/salaries/dependents").json()
    assert leaf["assets"] == [] and leaf["processes"] == []
    assert {r["title"] for r in leaf["risks"]} == {
        "Salary records leak",
        "Frankfurt site floods",
        "Region-wide power cut",
    }
