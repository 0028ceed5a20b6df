"""Every meaningful change writes its event in the same transaction: both commit, or neither."""

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.db import Database
from riskops.risks import service as risks
from riskops.risks.models import RiskCreate
from tests.conftest import SETTINGS, WRITER
from tests.helpers import risk_body, row_counts


def _events(client: TestClient, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get("/api/v1/events", params={**params, "limit": 3, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_risk_changes_write_their_events(client: TestClient) -> None:
    risk = client.post("/api/v1/risks", json=risk_body(residual=None)).json()
    ref = risk["reference"]
    client.patch(f"/api/v1/risks/{ref}", json={"owner": "cfo"})
    client.post(
        f"/api/v1/risks/{ref}/assessments", json={"inherent": {"likelihood": 5, "impact": 5}, "rationale": "worse"}
    )
    client.post(f"/api/v1/risks/{ref}/close", json={"reason": "transferred"})
    client.post(f"/api/v1/risks/{ref}/reopen", json={"reason": "back"})
    events = _events(client, subject=ref)
    assert [e["type"] for e in events] == [
        "risk.created", "risk.updated", "risk.assessed", "risk.level_changed", "risk.closed", "risk.reopened",
    ]  # fmt: skip
    level = events[3]["data"]
    assert (level["old_level"], level["new_level"]) == ("high", "critical")
    assert events[1]["data"]["changes"]["owner"] == {"old": "head of infrastructure", "new": "cfo"}
    assert all(e["message_id"] == f"evt_{e['id']}" and e["data"]["actor"] == "write-key" for e in events)


def test_incident_changes_write_their_events(client: TestClient, playbooks: Path) -> None:
    risk = client.post("/api/v1/risks", json=risk_body()).json()
    incident = client.post(
        "/api/v1/playbooks/core-service-outage/activate", json={"risk_ids": [risk["reference"]]}
    ).json()
    ref = incident["reference"]
    client.post(f"/api/v1/incidents/{ref}/acknowledge", json={})
    first = incident["steps"][0]["key"]
    client.post(f"/api/v1/incidents/{ref}/steps/{first}/complete")
    types = [e["type"] for e in _events(client, subject=ref)]
    assert types == [
        "incident.declared", "playbook.activated", "incident.state_changed", "incident.acknowledged", "step.completed",
    ]  # fmt: skip
    assert [e["type"] for e in _events(client, subject=risk["reference"], type="risk.materialised")] == [
        "risk.materialised"
    ]
    assert {e["type"] for e in _events(client, type="incident.*")} == {
        "incident.declared", "incident.state_changed", "incident.acknowledged",
    }  # fmt: skip


def test_a_change_that_fails_leaves_neither_row_nor_event(engine: Engine) -> None:
    before = row_counts(engine)
    with pytest.raises(RuntimeError), Database(engine).write() as session:
        risks.create_risk(session, RiskCreate.model_validate(risk_body()), WRITER, settings=SETTINGS)
        raise RuntimeError("the process dies before the commit")
    assert row_counts(engine) == before


def test_refused_requests_write_no_event(client: TestClient, engine: Engine) -> None:
    risk = client.post("/api/v1/risks", json=risk_body()).json()
    before = row_counts(engine)
    assert client.post(f"/api/v1/risks/{risk['id']}/reopen", json={"reason": "x"}).status_code == 409
    assert client.post("/api/v1/risks", json=risk_body(inherent={"likelihood": 9, "impact": 1})).status_code == 422
    assert row_counts(engine) == before
