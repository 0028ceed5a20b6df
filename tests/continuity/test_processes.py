"""Business processes over HTTP: the business impact analysis (RTO, RPO, MTPD, impact over time) checked and kept
in minutes, dependencies checked, versions and history, archive rather than delete."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import Keys
from tests.continuity.support import events, history, link, make_asset, make_process, make_risk, process_body
from tests.helpers import assert_problem, row_counts

IMPACTS = [  # by dimension, as a spreadsheet of the analysis lists them
    {"after": "4h", "dimension": "financial", "level": 2},
    {"after": "1d", "dimension": "financial", "level": 3},
    {"after": "P1W", "dimension": "financial", "level": 5},
    {"after": 240, "dimension": "legal", "level": 1},
    {"after": "3d", "dimension": "legal", "level": 4},
]


def test_a_process_keeps_its_business_impact_analysis_in_minutes(client: TestClient) -> None:
    body = process_body(
        "payroll", criticality="critical", rto_minutes="4h", rpo_minutes="PT30M", mtpd_minutes="P1D",
        minimum_service_level="Salaries paid on time, even by manual transfer", impact_over_time=IMPACTS,
    )  # fmt: skip
    response = client.post("/api/v1/processes", json=body)
    assert response.status_code == 201, response.text
    made = response.json()
    assert response.headers["location"] == "/api/v1/processes/P-0001" and response.headers["etag"] == '"1"'
    assert made["reference"] == "P-0001" and made["key"] == "payroll" and made["status"] == "active"
    assert (made["rto_minutes"], made["rpo_minutes"], made["mtpd_minutes"]) == (240, 30, 1440)
    # by time, then dimension; each point as people write it and in minutes
    assert [(p["after"], p["after_minutes"], p["dimension"], p["level"]) for p in made["impact_over_time"]] == [
        ("4h", 240, "financial", 2), ("4h", 240, "legal", 1), ("1d", 1440, "financial", 3),
        ("3d", 4320, "legal", 4), ("1w", 10080, "financial", 5),
    ]  # fmt: skip
    assert made["recovery"] == {"rto_met": False, "rpo_met": False, "mtpd_met": False, "playbooks": []}
    assert client.get("/api/v1/processes/payroll").json() == made == client.get("/api/v1/processes/p-1").json()
    [created] = history(client, "/api/v1/processes/P-0001")
    assert created["action"] == "created" and created["changes"]["rto_minutes"] == {"old": None, "new": 240}
    [event] = events(client, "process.created", "P-0001")
    assert event["key"] == "payroll" and event["actor"] == "write-key"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rto_minutes": "1d", "mtpd_minutes": "4h"}, "body.rto_minutes"),
        ({"rto_minutes": 0}, "body.rto_minutes"),
        ({"rpo_minutes": "3 days"}, "body.rpo_minutes"),
        ({"mtpd_minutes": "P1M"}, "body.mtpd_minutes"),  # a month has no fixed length
        ({"mtpd_minutes": "53w"}, "body.mtpd_minutes"),  # beyond a year
        ({"rto_minutes": True}, "body.rto_minutes"),
        ({"criticality": "vital"}, "body.criticality"),
        ({"key": "Payroll"}, "body.key"),
        ({"key": "p-0002"}, "body.key"),
        ({"name": "x" * 201}, "body.name"),
        ({"owner": "  "}, "body.owner"),
        ({"minimum_service_level": "x" * 2001}, "body.minimum_service_level"),
        (
            {"impact_over_time": [{"after": "4h", "dimension": "weather", "level": 2}]},
            "body.impact_over_time.0.dimension",
        ),
        ({"impact_over_time": [{"after": "4h", "dimension": "legal", "level": 6}]}, "body.impact_over_time.0.level"),
        ({"impact_over_time": [{"after": "4h", "dimension": "legal", "level": 2}] * 61}, "body.impact_over_time"),
        ({"depends_on": {"processes": ["x"] * 101}}, "body.depends_on.processes"),
    ],
)
def test_a_bad_field_is_422_naming_it_and_writes_nothing(
    client: TestClient, engine: Engine, overrides: dict[str, Any], field: str
) -> None:
    counts = row_counts(engine)
    assert_problem(client.post("/api/v1/processes", json={**process_body("payroll"), **overrides}), 422, field)
    assert row_counts(engine) == counts


def test_impact_over_time_goes_forward_in_time_and_never_lessens(client: TestClient) -> None:
    earlier = [
        {"after": "1d", "dimension": "financial", "level": 2},
        {"after": "4h", "dimension": "financial", "level": 3},
    ]
    body = assert_problem(
        client.post("/api/v1/processes", json=process_body("payroll", impact_over_time=earlier)), 422,
        "body.impact_over_time.1.after",
    )  # fmt: skip
    assert "after the financial point at 1d" in body["errors"][0]["message"]
    lessening = [{"after": "4h", "dimension": "legal", "level": 4}, {"after": "1d", "dimension": "legal", "level": 2}]
    body = assert_problem(
        client.post("/api/v1/processes", json=process_body("payroll", impact_over_time=lessening)), 422,
        "body.impact_over_time.1.level",
    )  # fmt: skip
    assert "not be below 4" in body["errors"][0]["message"]
    # a dimension's points may sit apart in the list; only their own order counts
    mixed = [
        *earlier[:1],
        {"after": "4h", "dimension": "legal", "level": 1},
        {"after": "1w", "dimension": "financial", "level": 2},
    ]
    assert client.post("/api/v1/processes", json=process_body("payroll", impact_over_time=mixed)).status_code == 201


def test_an_rto_beyond_the_mtpd_is_refused_whichever_side_changes(client: TestClient) -> None:
    make_process(client, "payroll", rto_minutes="4h", mtpd_minutes="1d")
    body = assert_problem(
        client.patch("/api/v1/processes/payroll", json={"mtpd_minutes": "2h"}), 422, "body.mtpd_minutes"
    )
    assert "must not exceed the MTPD (2h)" in body["detail"]
    assert_problem(client.patch("/api/v1/processes/payroll", json={"rto_minutes": "2d"}), 422, "body.rto_minutes")
    cleared = client.patch("/api/v1/processes/payroll", json={"mtpd_minutes": None, "rto_minutes": "2d"})
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["rto_minutes"], cleared.json()["mtpd_minutes"]) == (2880, None)


def test_changes_need_the_version_read_and_a_writer(client: TestClient, keys: Keys) -> None:
    make_process(client, "payroll")
    reader = keys.headers("read")
    assert_problem(client.post("/api/v1/processes", json=process_body("billing"), headers=reader), 403)
    assert_problem(client.patch("/api/v1/processes/payroll", json={"name": "Pay"}, headers=reader), 403)
    changed = client.patch("/api/v1/processes/payroll", json={"name": "Pay"}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"' and changed.json()["version"] == 2
    assert_problem(client.patch("/api/v1/processes/payroll", json={"name": "X"}, headers={"If-Match": '"1"'}), 412)
    same = client.patch("/api/v1/processes/payroll", json={"name": "Pay"})
    assert same.json()["version"] == 2  # nothing changed: no new version, no history entry
    assert [e["action"] for e in history(client, "/api/v1/processes/payroll")] == ["created", "updated"]
    assert [e["changes"] for e in events(client, "process.updated", "P-0001")] == [
        {"name": {"old": "Payroll", "new": "Pay"}}
    ]
    assert_problem(client.patch("/api/v1/processes/payroll", json={"name": None}), 422, "body.name")
    assert_problem(client.patch("/api/v1/processes/payroll", json={"key": "pay"}), 422, "body.key")
    assert_problem(client.post("/api/v1/processes", json=process_body("payroll")), 409, "body.key")
    assert_problem(client.get("/api/v1/processes/P-2147483648"), 404)
    assert_problem(client.get("/api/v1/processes/nothing"), 404)


def test_dependencies_are_processes_assets_and_suppliers_of_the_right_kind(client: TestClient) -> None:
    make_process(client, "hr-data")
    make_asset(client, "hr-db")
    make_asset(client, "payroll-bureau", kind="supplier")
    made = make_process(
        client, "payroll",
        depends_on={"processes": ["hr-data"], "assets": ["A-0001"], "suppliers": ["payroll-bureau"]},
    )  # fmt: skip
    on = made["depends_on"]
    assert [p["reference"] for p in on["processes"]] == ["P-0001"]
    assert [(a["key"], a["kind"]) for a in on["assets"]] == [("hr-db", "system")]
    assert [(a["key"], a["kind"]) for a in on["suppliers"]] == [("payroll-bureau", "supplier")]
    for depends_on, field, words in (
        ({"processes": ["nothing"]}, "body.depends_on.processes.0", "no process"),
        ({"processes": ["payroll"]}, "body.depends_on.processes.0", "itself"),
        ({"processes": ["hr-data", "P-0001"]}, "body.depends_on.processes.1", "twice"),
        ({"assets": ["payroll-bureau"]}, "body.depends_on.assets.0", "supplier"),
        ({"suppliers": ["hr-db"]}, "body.depends_on.suppliers.0", "not a supplier"),
    ):
        body = assert_problem(client.patch("/api/v1/processes/payroll", json={"depends_on": depends_on}), 422, field)
        assert words in body["errors"][0]["message"], body
    assert client.get("/api/v1/processes/payroll").json()["depends_on"] == on  # nothing changed


def test_a_dependency_cycle_is_refused(client: TestClient) -> None:
    make_process(client, "ledger")
    make_process(client, "hr-data", depends_on={"processes": ["ledger"]})
    make_process(client, "payroll", depends_on={"processes": ["hr-data"]})
    body = assert_problem(
        client.patch("/api/v1/processes/ledger", json={"depends_on": {"processes": ["payroll"]}}), 422,
        "body.depends_on.processes.0",
    )  # fmt: skip
    assert "ledger -> payroll -> hr-data -> ledger" in body["errors"][0]["message"]


def test_archived_things_stay_linked_but_are_not_linked_anew(client: TestClient) -> None:
    make_process(client, "hr-data")
    make_process(client, "payroll", depends_on={"processes": ["hr-data"]})
    archived = client.post("/api/v1/processes/hr-data/archive")
    assert archived.status_code == 200 and archived.json()["status"] == "archived" and archived.json()["archived_at"]
    assert_problem(client.post("/api/v1/processes/hr-data/archive"), 409)
    assert_problem(client.patch("/api/v1/processes/hr-data", json={"name": "HR"}), 409)
    # a dependency it had stays (also when the list is sent again), but none is made anew
    kept = client.patch("/api/v1/processes/payroll", json={"depends_on": {"processes": ["hr-data"]}, "name": "Pay"})
    assert kept.status_code == 200 and kept.json()["depends_on"]["processes"][0]["status"] == "archived"
    body = process_body("billing", depends_on={"processes": ["hr-data"]})
    assert_problem(client.post("/api/v1/processes", json=body), 422, "body.depends_on.processes.0")
    assert [p["key"] for p in client.get("/api/v1/processes", params={"status": "archived"}).json()["items"]] == [
        "hr-data"
    ]
    restored = client.post("/api/v1/processes/hr-data/restore", headers={"If-Match": archived.headers["etag"]})
    assert restored.status_code == 200 and restored.json()["status"] == "active" and not restored.json()["archived_at"]
    actions = [e["action"] for e in history(client, "/api/v1/processes/hr-data")]
    assert actions == ["created", "archived", "restored"]
    [archiving] = events(client, "process.archived", "P-0001")
    assert archiving["changes"] == {"status": {"old": "active", "new": "archived"}}
    assert len(events(client, "process.restored", "P-0001")) == 1


def test_only_a_process_nothing_links_to_is_deleted(client: TestClient) -> None:
    make_process(client, "hr-data")
    make_process(client, "payroll", depends_on={"processes": ["hr-data"]})
    risk = make_risk(client, "Payroll run fails")
    link(client, risk, "process", "payroll")
    body = assert_problem(client.delete("/api/v1/processes/hr-data"), 409, "processes")
    assert "P-0002" in body["errors"][0]["message"]
    body = assert_problem(client.delete("/api/v1/processes/payroll"), 409, "risks")
    assert risk["reference"] in body["errors"][0]["message"]
    assert client.delete(f"/api/v1/risks/{risk['reference']}/processes/payroll").status_code == 204
    assert_problem(client.delete("/api/v1/processes/payroll", headers={"If-Match": '"9"'}), 412)
    assert client.delete("/api/v1/processes/payroll").status_code == 204
    assert_problem(client.get("/api/v1/processes/payroll"), 404)
    assert client.delete("/api/v1/processes/hr-data").status_code == 204  # nothing depends on it any more
    entries = client.get("/api/v1/audit", params={"entity_type": "process", "entity_id": "2"}).json()["items"]
    assert [e["action"] for e in entries][-1] == "deleted" and entries[-1]["changes"]["key"]["old"] == "payroll"
    assert len(events(client, "process.deleted", "P-0002")) == 1


def test_the_list_filters_and_pages(client: TestClient, keys: Keys) -> None:
    for i, criticality in enumerate(["low", "critical", "critical", "high"]):
        make_process(client, f"process-{i}", criticality=criticality)
    reader = keys.headers("read")
    first = client.get("/api/v1/processes", params={"criticality": "critical", "limit": 1}, headers=reader).json()
    assert [p["key"] for p in first["items"]] == ["process-1"] and first["next_cursor"]
    rest = client.get(
        "/api/v1/processes", params={"criticality": "critical", "cursor": first["next_cursor"]}, headers=reader
    ).json()
    assert [p["key"] for p in rest["items"]] == ["process-2"] and rest["next_cursor"] is None
    assert_problem(client.get("/api/v1/processes", params={"criticality": "vital"}), 422, "query.criticality")
    assert_problem(client.get("/api/v1/processes", params={"cursor": "nonsense"}), 422, "query.cursor")
