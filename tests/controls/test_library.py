"""The control library over HTTP: defining, filtering, editing with ETags, retiring and deleting, every change in the
control's history."""

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, risk_body, row_counts

TODAY = date(2026, 7, 1)  # the frozen clock's


def control_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Quarterly access review",
        "description": "Managers confirm every account of their team.",
        "type": "detective",
        "nature": "manual",
        "owner": "ciso@example.org",
        "framework_references": ["ISO/IEC 27001:2022 A.5.18", "NIST SP 800-53 AC-2"],
        "test_interval_days": 90,
    }
    body.update(overrides)
    return body


def add_control(client: TestClient, **overrides: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/controls", json=control_body(**overrides))
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def add_risk(client: TestClient, **overrides: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def test_define_read_and_find_in_its_history(client: TestClient, frozen_clock: FrozenClock) -> None:
    created = client.post("/api/v1/controls", json=control_body(framework_references=["  NIST SP  800-53 AC-2(1) "]))
    assert created.status_code == 201, created.text
    control = created.json()
    assert created.headers["etag"] == '"1"' and created.headers["location"] == "/api/v1/controls/C-0001"
    assert control["reference"] == "C-0001" and control["effectiveness"] == "untested"
    assert control["framework_references"] == ["NIST SP 800-53 AC-2(1)"]  # spaces collapsed
    assert control["next_test_due"] == (TODAY + timedelta(days=90)).isoformat() and not control["due_for_testing"]
    assert control["status"] == "active" and control["risks"] == [] and control["version"] == 1
    for ref in ("C-0001", "c-1", "1"):
        read = client.get(f"/api/v1/controls/{ref}")
        assert read.status_code == 200 and read.json() == control and read.headers["etag"] == '"1"'
    [entry] = client.get("/api/v1/controls/C-0001/history").json()["items"]
    assert (entry["entity_type"], entry["action"], entry["actor"]) == ("control", "created", "write-key")
    assert entry["changes"]["title"] == {"old": None, "new": "Quarterly access review"}
    assert_problem(client.get("/api/v1/controls/C-0002"), 404)
    assert_problem(client.get("/api/v1/controls/risk-1"), 404)


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("framework_references", ["Managers must review access rights regularly."], "body.framework_references.0"),
        ("framework_references", ["ISO 27001; DROP TABLE"], "body.framework_references.0"),
        ("framework_references", ["A.5.15"], "body.framework_references.0"),  # no framework named
        ("framework_references", ["ISO/IEC 27001:2022 Annex"], "body.framework_references.0"),  # no clause id
        ("framework_references", ["ISO 27001 A." + "1" * 100], "body.framework_references.0"),
        ("framework_references", [f"NIST SP 800-53 AC-{n}" for n in range(31)], "body.framework_references"),
        ("test_interval_days", 0, "body.test_interval_days"),
        ("test_interval_days", "90", "body.test_interval_days"),
        ("type", "deterrent", "body.type"),
        ("nature", "semi", "body.nature"),
        ("owner", " ", "body.owner"),
        ("title", "x" * 201, "body.title"),
        ("description", "x" * 20001, "body.description"),
        ("effectiveness", "effective", "body.effectiveness"),  # set by tests alone
    ],
)
def test_bad_input_is_refused_naming_the_field(
    client: TestClient, engine: Engine, field: str, value: Any, where: str
) -> None:
    before = row_counts(engine)
    assert_problem(client.post("/api/v1/controls", json=control_body(**{field: value})), 422, where)
    assert row_counts(engine) == before


def test_edits_need_the_current_etag_and_are_audited(client: TestClient, engine: Engine) -> None:
    add_control(client)
    stale = client.patch("/api/v1/controls/C-0001", json={"owner": "cto"}, headers={"If-Match": '"0"'})
    body = assert_problem(stale, 412)
    assert body["current_version"] == 1
    edited = client.patch(
        "/api/v1/controls/C-0001", json={"owner": "cto", "type": "preventive"}, headers={"If-Match": '"1"'}
    )
    assert edited.status_code == 200, edited.text
    assert edited.headers["etag"] == '"2"' and edited.json()["owner"] == "cto" and edited.json()["type"] == "preventive"
    same = client.patch("/api/v1/controls/C-0001", json={"owner": "cto"})
    assert same.json()["version"] == 2  # nothing changed: no new version
    before = row_counts(engine)
    assert_problem(client.patch("/api/v1/controls/C-0001", json={"title": None}), 422, "body.title")
    assert_problem(client.patch("/api/v1/controls/C-0001", json={"version": 9}), 422, "body.version")
    assert row_counts(engine) == before
    history = client.get("/api/v1/controls/C-0001/history").json()["items"]
    assert [e["action"] for e in history] == ["created", "updated"]
    assert history[1]["changes"] == {
        "owner": {"old": "ciso@example.org", "new": "cto"}, "type": {"old": "detective", "new": "preventive"},
    }  # fmt: skip


def test_a_new_interval_moves_the_next_test_and_null_clears_it(client: TestClient, frozen_clock: FrozenClock) -> None:
    add_control(client)
    moved = client.patch("/api/v1/controls/C-0001", json={"test_interval_days": 30}).json()
    assert moved["next_test_due"] == (TODAY + timedelta(days=30)).isoformat()
    by_hand = client.patch("/api/v1/controls/C-0001", json={"next_test_due": "2026-06-30"}).json()
    assert by_hand["next_test_due"] == "2026-06-30" and by_hand["due_for_testing"]
    cleared = client.patch("/api/v1/controls/C-0001", json={"test_interval_days": None}).json()
    assert cleared["test_interval_days"] is None and cleared["next_test_due"] is None


def test_the_filters_select_and_pages_follow(client: TestClient, frozen_clock: FrozenClock) -> None:
    add_control(client, owner="CISO", type="preventive")
    add_control(client, owner="cto", test_interval_days=None, next_test_due="2026-06-01")  # due
    add_control(client, owner="ciso", type="corrective", test_interval_days=None)
    add_control(client, owner="ops", next_test_due="2026-06-01")
    client.patch("/api/v1/controls/C-0004", json={"status": "retired"})  # a retired control is never due

    def refs(query: str) -> list[str]:
        answer = client.get(f"/api/v1/controls?{query}")
        assert answer.status_code == 200, answer.text
        return [c["reference"] for c in answer.json()["items"]]

    assert refs("") == ["C-0001", "C-0002", "C-0003", "C-0004"]
    assert refs("owner=Ciso") == ["C-0001", "C-0003"]
    assert refs("type=preventive&type=corrective") == ["C-0001", "C-0003"]
    assert refs("due=true") == ["C-0002"]
    assert refs("due=false") == ["C-0001", "C-0003", "C-0004"]
    assert refs("status=retired") == ["C-0004"]
    assert refs("effectiveness=untested&owner=cto") == ["C-0002"]
    assert refs("effectiveness=ineffective") == []
    first = client.get("/api/v1/controls?limit=3").json()
    rest = client.get(f"/api/v1/controls?limit=3&cursor={first['next_cursor']}").json()
    assert [c["reference"] for c in rest["items"]] == ["C-0004"] and rest["next_cursor"] is None
    assert_problem(client.get("/api/v1/controls?effectiveness=weak"), 422, "query.effectiveness.0")
    assert_problem(client.get("/api/v1/controls?cursor=nonsense!"), 422, "query.cursor")
    assert_problem(client.get("/api/v1/controls?limit=501"), 422, "query.limit")


def test_readers_read_and_only_writers_change(client: TestClient, keys: Keys, engine: Engine) -> None:
    add_control(client)
    reader = keys.headers("read")
    assert client.get("/api/v1/controls", headers=reader).status_code == 200
    before = row_counts(engine)
    assert_problem(client.post("/api/v1/controls", json=control_body(), headers=reader), 403)
    assert_problem(client.patch("/api/v1/controls/C-0001", json={"owner": "x"}, headers=reader), 403)
    assert_problem(client.delete("/api/v1/controls/C-0001", headers=reader), 403)
    assert row_counts(engine) == before
    assert client.post("/api/v1/controls", json=control_body(), headers=keys.headers("admin")).status_code == 201


def test_retired_controls_are_applied_and_tested_no_more_until_reactivated(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock
) -> None:
    add_control(client)
    risk = add_risk(client)
    retired = client.patch("/api/v1/controls/C-0001", json={"status": "retired"})
    assert retired.json()["status"] == "retired" and not retired.json()["due_for_testing"]
    before = row_counts(engine)
    apply = client.post(f"/api/v1/risks/{risk['reference']}/controls", json={"control_id": 1})
    assert_problem(apply, 409, "body.control_id")
    test = {"tested_on": "2026-06-30", "tester": "auditor", "result": "effective", "evidence_url": "https://e.x/1"}
    assert_problem(client.post("/api/v1/controls/C-0001/tests", json=test), 409)
    assert row_counts(engine) == before
    client.patch("/api/v1/controls/C-0001", json={"status": "active"})
    assert client.post(f"/api/v1/risks/{risk['reference']}/controls", json={"control_id": 1}).status_code == 201
    actions = [e["action"] for e in client.get("/api/v1/controls/C-0001/history").json()["items"]]
    assert actions == ["created", "retired", "reactivated", "applied"]


def test_only_a_control_without_a_record_is_deleted(client: TestClient, engine: Engine) -> None:
    add_control(client)
    add_control(client, title="Applied")
    risk = add_risk(client)
    client.post(f"/api/v1/risks/{risk['reference']}/controls", json={"control_id": 2})
    before = row_counts(engine)
    refused = assert_problem(client.delete("/api/v1/controls/C-0002"), 409)
    assert refused["applied"] == 1 and refused["tests"] == 0
    assert_problem(client.delete("/api/v1/controls/C-0001", headers={"If-Match": '"7"'}), 412)
    assert row_counts(engine) == before
    assert client.delete("/api/v1/controls/C-0001", headers={"If-Match": '"1"'}).status_code == 204
    assert_problem(client.get("/api/v1/controls/C-0001"), 404)
    assert row_counts(engine)["control"] == before["control"] - 1
    assert row_counts(engine)["audit_entry"] == before["audit_entry"] + 1  # its deletion, kept in the history


def test_a_deleted_controls_reference_is_never_given_again(client: TestClient) -> None:
    add_control(client)
    assert client.delete("/api/v1/controls/C-0001").status_code == 204
    assert add_control(client)["reference"] == "C-0002"
    [entry] = client.get("/api/v1/controls/C-0002/history").json()["items"]  # none of C-0001's
    assert entry["action"] == "created"
