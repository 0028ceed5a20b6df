"""The read model answers byte for byte what the ORM path (queries.present and queries.list_incidents, serialised
by FastAPI) answers, with one statement per request."""

import json
from datetime import timedelta
from itertools import product
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.errors import NotFound, Unprocessable
from riskops.incidents import queries, reads, service
from riskops.incidents.models import IncidentPublic, IncidentSummaryPublic
from riskops.pagination import Page, encode_cursor
from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.helpers import risk_body, statements
from tests.incidents.support import finish_obligations
from tests.integrations.support import bearer, make_integration

# FastAPI writes a response model with its TypeAdapter's dump_json: these are the bytes the ORM routes answered.
_ONE = TypeAdapter(IncidentPublic)
_PAGE = TypeAdapter(Page[IncidentSummaryPublic])
SUMMARY = {
    "what_happened": 'A misdirected export sent 1,200 records — "all" of them\n</script>',
    "impact": "Names and e-mail addresses 🌊",
    "root_cause": "A shared alias.",
}
FILTERS: list[dict[str, Any]] = [
    {},
    {"exercise": True},
    {"state": ["declared"]},
    {"state": ["acknowledged", "resolved"]},
    {"state": ["closed"]},
    {"state": ["closed"], "exercise": True},
    {"severity": ["SEV1"]},
    {"severity": ["SEV2", "SEV4"]},
    {"playbook": "personal-data-breach"},
    {"playbook": "core-service-outage", "exercise": True},
    {"playbook": "no-such-playbook"},
    {"risk": "R-0001"},
    {"risk": "3"},
    {"risk": "r-0099"},
    {"q": "breach"},
    {"q": "ÜBER"},
    {"q": "100%"},
    {"q": "_"},
    {"state": ["declared", "acknowledged"], "severity": ["SEV1", "SEV2", "SEV3"], "q": "e", "risk": "R-0003"},
]


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def incidents(client: TestClient, keys: Keys, playbooks: Path, frozen_clock: FrozenClock, worker: Worker) -> list[str]:
    """Incidents in every state, real and exercises, with and without plans and linked risks; roles assigned
    and not, steps pending, started, done, skipped and overdue, messages sent and owed; escalation levels fired;
    acknowledged by a person and by a machine; closed with follow-ups; reopened; deadlines met and missed."""
    risks = [_ok(client.post("/api/v1/risks", json=risk_body(title=f"Risk {i}"))) for i in range(3)]
    policy = {"name": "default", "levels": [{"wait_minutes": 5, "emails": ["oncall@example.com"]}], "repeat": 1}
    _ok(client.put("/api/v1/escalation-policies/default", json=policy, headers=keys.headers("admin")))
    refs: list[str] = []

    def activate(slug: str, **body: Any) -> dict[str, Any]:
        incident = _ok(client.post(f"/api/v1/playbooks/{slug}/activate", json=body))
        refs.append(incident["reference"])
        return incident

    def declare(**body: Any) -> dict[str, Any]:
        incident = _ok(client.post("/api/v1/incidents", json=body))
        refs.append(incident["reference"])
        return incident

    def move(incident: dict[str, Any], action: str, **body: Any) -> dict[str, Any]:
        return _ok(client.post(f"/api/v1/incidents/{incident['reference']}/{action}", json=body or None))

    def later(minutes: int, micros: int = 0) -> None:
        frozen_clock.advance(timedelta(minutes=minutes, microseconds=micros))

    # Declared 30 minutes after detection, linked to two risks given out of order; worked to its close.
    breach = activate(
        "personal-data-breach", risk_ids=[risks[2]["reference"], risks[0]["id"]],
        detected_at=(frozen_clock.now - timedelta(minutes=30)).isoformat(),
        description="Export sent 100% of the list — Über alles\t\\",
    )  # fmt: skip
    later(7, 123450)
    for role in breach["roles"]:
        _ok(client.put(f"/api/v1/incidents/{breach['reference']}/roles/{role['key']}", json={"assignee": "dana"}))
    move(breach, "acknowledge", note="on it")
    optional = [s for s in breach["steps"] if not s["required"]]
    for step in optional[:1]:
        _ok(client.post(f"/api/v1/incidents/{breach['reference']}/steps/{step['key']}/skip", json={"reason": "n/a"}))
    finish_obligations(client, breach)
    later(45)
    move(breach, "mitigate")
    move(breach, "resolve")
    follow_ups = [
        {"title": "Per-partner aliases", "owner": "data platform", "control_for": risks[0]["reference"],
         "due_date": "2026-09-30"},
        {"title": "Train staff", "owner": "dpo"},
    ]  # fmt: skip
    move(breach, "close", summary={**SUMMARY, "follow_up_actions": follow_ups})

    # An exercise of the outage plan, closed with its verdict.
    drill = activate("core-service-outage", exercise=True, title="Quarterly drill")
    later(3, 5)
    move(drill, "acknowledge")
    finish_obligations(client, drill, optional=True)
    move(drill, "mitigate")
    move(drill, "resolve")
    move(drill, "close", summary={**SUMMARY, "objectives_met": False})

    # Left declared with a lower severity than the plan's: its steps fall due as time passes.
    ransom = activate("ransomware", severity="SEV3", risk_ids=[risks[1]["id"]], title='Ransom "note" ✉\nline two')
    step = ransom["steps"][0]
    _ok(client.put(f"/api/v1/incidents/{ransom['reference']}/steps/{step['key']}/assignee", json={"assignee": "éva"}))
    _ok(client.post(f"/api/v1/incidents/{ransom['reference']}/steps/{step['key']}/start"))

    # Without a plan: acknowledged, mitigated, resolved and reopened.
    plain = declare(title="Payments API returns 500s", severity="SEV4", risk_ids=[risks[1]["reference"]])
    later(11, 999999)
    for action in ("acknowledge", "mitigate", "resolve", "reopen"):
        move(plain, action)

    # Acknowledged by a machine: an alert on a route that does not page.
    token = make_integration(client, keys, "generic", default_route={"page": False})["token"]
    alert = {"action": "trigger", "dedup_key": "backup", "title": "Nightly backup failed", "severity": "SEV2"}
    opened = client.post("/api/v1/inbound/generic", json=alert, headers=bearer(token))
    assert opened.status_code == 202, opened.text
    refs.append(f"INC-{opened.json()['incident_id']:04d}")

    # Resolved within its recovery time; and one in progress with some messages sent.
    site = activate("site-emergency")
    later(20)
    for action in ("acknowledge", "mitigate", "resolve"):
        move(site, action)
    supplier = activate("critical-supplier-failure", risk_ids=[risks[0]["id"], risks[1]["id"], risks[2]["id"]])
    _ok(client.put(f"/api/v1/incidents/{supplier['reference']}/roles/{supplier['roles'][0]['key']}",
                   json={"assignee": "sam"}))  # fmt: skip
    step = supplier["steps"][0]["key"]
    _ok(client.post(f"/api/v1/incidents/{supplier['reference']}/steps/{step}/skip", json={"reason": "done by hand"}))
    message = supplier["communications"][0]["key"]
    _ok(client.post(f"/api/v1/incidents/{supplier['reference']}/communications/{message}/sent", json={"note": "ok"}))
    move(supplier, "acknowledge")
    activate("cloud-region-loss", exercise=True)
    move(activate("core-service-outage", title="Card payments down"), "acknowledge")
    activate("pr-crisis", detected_at=(frozen_clock.now - timedelta(days=4)).isoformat())
    for i in range(4):
        minor = declare(title=f"Minor {i}: über _x_", severity=("SEV1", "SEV2", "SEV3", "SEV4")[i], description="e" * i)
        for action in ("acknowledge", "mitigate")[: i % 3]:
            move(minor, action)
    # Escalation levels fire, deadlines pass: some steps and messages overdue, some RTOs missed.
    for _ in range(3):
        later(6)
        worker.tick()
    later(60 * 9, 250)  # past the outage's RTO (2 hours) and MTPD (8 hours), not the ransomware's (2 days)
    worker.tick()
    return refs


def _orm_incident(session: Session, ref: str) -> bytes:
    return _ONE.dump_json(queries.present(session, service.get_incident(session, ref)))


def _orm_page(session: Session, **options: Any) -> bytes:
    items, next_cursor = queries.list_incidents(session, **options)
    return _PAGE.dump_json(Page(items=items, next_cursor=next_cursor))


def test_an_incident_reads_as_the_orm_shows_it(engine: Engine, incidents: list[str]) -> None:
    with Session(engine) as session:
        for ref in incidents:
            expected = _orm_incident(session, ref)
            body = reads.read_incident(session, ref)
            assert json.loads(body) == json.loads(expected), ref
            assert body == expected, ref
        kinds = [json.loads(reads.read_incident(session, ref)) for ref in incidents]
    # The incidents hold every case the read model shapes differently.
    assert {k["state"] for k in kinds} == {"declared", "acknowledged", "mitigated", "resolved", "closed"}
    assert {k["exercise"] for k in kinds} == {True, False}
    assert {k["summary"] is None for k in kinds} == {True, False}
    assert {k["objectives_met"] for k in kinds} == {None, False}
    assert {k["acknowledged_automatically"] for k in kinds} == {True, False}
    assert {k["measures"]["rto_met"] for k in kinds} == {True, False, None}
    assert {k["measures"]["mtpd_exceeded"] for k in kinds} == {True, False}
    assert {len(k["risk_ids"]) for k in kinds} >= {0, 1, 2, 3}
    assert {len(k["roles"]) > 0 for k in kinds} == {True, False}
    steps = [s for k in kinds for s in k["steps"]]
    assert {s["status"] for s in steps} == {"pending", "in-progress", "done", "skipped"}
    assert {s["overdue"] for s in steps} == {True, False}
    assert any(s["depends_on"] for s in steps)
    messages = [m for k in kinds for m in k["communications"]]
    assert {(m["status"], m["overdue"]) for m in messages} >= {("sent", False), ("pending", True), ("pending", False)}
    assert {r["assignee"] is None for k in kinds for r in k["roles"]} == {True, False}
    assert any(k["unfilled_required_roles"] for k in kinds)


def test_an_incident_is_read_with_one_statement_and_a_missing_one_is_the_same_404(
    engine: Engine, incidents: list[str]
) -> None:
    with Session(engine) as session:
        with statements(engine) as seen:
            reads.read_incident(session, incidents[0])
        assert len(seen) == 1
        for ref in ("INC-9999", "9999", "0", "INC-0", "999999999999", "INC-2147483648", "R-0001", "x"):
            with pytest.raises(NotFound) as orm:
                service.get_incident(session, ref)
            with pytest.raises(NotFound) as read:
                reads.read_incident(session, ref)
            assert str(read.value) == str(orm.value)


def test_every_filter_pages_as_the_orm_does(engine: Engine, incidents: list[str]) -> None:
    with Session(engine) as session:
        for spec, limit in product(FILTERS, (1, 3, 50)):
            cursor: str | None = None
            pages = 0
            while True:
                options: dict[str, Any] = {**spec, "cursor": cursor, "limit": limit}
                expected = _orm_page(session, **options)
                with statements(engine) as seen:
                    body = reads.read_page(session, **options)
                assert len(seen) == 1
                assert json.loads(body) == json.loads(expected), options
                assert body == expected, options
                pages += 1
                assert pages <= len(incidents) // limit + 1, options  # a walk must end
                cursor = json.loads(body)["next_cursor"]
                if cursor is None:
                    break
        # The walks compared real rows.
        listed = json.loads(reads.read_page(session, limit=500))["items"]
        assert len(listed) + len(json.loads(reads.read_page(session, exercise=True))["items"]) == len(incidents)
        assert {len(i["risk_ids"]) for i in listed} == {0, 1, 2, 3}


PROBLEMS: list[tuple[dict[str, Any], str | None, type[Exception]]] = [
    ({"risk": "not-a-risk"}, None, NotFound),
    ({"risk": "not-a-risk"}, "not a cursor!", NotFound),
    ({}, "not a cursor!", Unprocessable),
    ({}, encode_cursor(["INC-0001"]), Unprocessable),
    ({}, encode_cursor([1, 2]), Unprocessable),
    ({"state": ["closed"]}, "eyJpZCI6MX0", Unprocessable),  # {"id":1}: not a list
]


def test_bad_filters_and_cursors_are_the_same_problem(engine: Engine, incidents: list[str]) -> None:
    with Session(engine) as session:
        for spec, cursor, problem in PROBLEMS:
            with pytest.raises(problem) as orm:
                queries.list_incidents(session, **spec, cursor=cursor)
            with pytest.raises(problem) as read:
                reads.read_page(session, **spec, cursor=cursor)
            assert (str(read.value), read.value.__dict__) == (str(orm.value), orm.value.__dict__)


def test_the_routes_answer_the_read_model_bytes(client: TestClient, engine: Engine, incidents: list[str]) -> None:
    with Session(engine) as session:
        for ref in incidents[:4]:
            expected = _orm_incident(session, ref)
            for path_ref in (ref, ref.removeprefix("INC-").lstrip("0"), ref.lower()):
                response = client.get(f"/api/v1/incidents/{path_ref}")
                assert response.status_code == 200
                assert response.headers["content-type"] == "application/json"
                assert response.content == expected
        params: list[tuple[str, str | int]] = [("state", "declared"), ("state", "acknowledged"), ("limit", 2)]
        cursor = None
        while True:
            response = client.get("/api/v1/incidents", params=params + ([("cursor", cursor)] if cursor else []))
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            expected = _orm_page(session, state=["declared", "acknowledged"], cursor=cursor, limit=2)
            assert response.content == expected
            cursor = response.json()["next_cursor"]
            if cursor is None:
                break
    assert client.get("/api/v1/incidents/INC-9999").status_code == 404
    assert client.get("/api/v1/incidents", params={"risk": "nonsense"}).status_code == 404
    assert client.get("/api/v1/incidents", params={"cursor": "nonsense"}).status_code == 422
    assert client.get("/api/v1/incidents", params={"state": "pending"}).status_code == 422


def test_the_documented_response_models_are_unchanged(client: TestClient) -> None:
    document = cast(FastAPI, client.app).openapi()

    def answer(path: str) -> dict[str, Any]:
        schema: dict[str, Any] = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"][
            "schema"
        ]
        return schema

    assert answer("/api/v1/incidents") == {"$ref": "#/components/schemas/Page_IncidentSummaryPublic_"}
    assert answer("/api/v1/incidents/{incident_ref}") == {"$ref": "#/components/schemas/IncidentPublic"}
    schemas = document["components"]["schemas"]
    assert schemas["Page_IncidentSummaryPublic_"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/IncidentSummaryPublic"
    }
    for model in (IncidentPublic, IncidentSummaryPublic):
        assert list(schemas[model.__name__]["properties"]) == list(model.model_fields)
    parameters = [p["name"] for p in document["paths"]["/api/v1/incidents"]["get"]["parameters"]]
    assert parameters == ["state", "severity", "playbook", "risk", "q", "exercise", "cursor", "limit"]
