"""Snapshots name risks and incidents as their own domains do: a second spelling of R-0042 or INC-0007 in the
review code would part from the first one day, and this is where it would show."""

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from riskops.incidents.models import Incident
from riskops.risks.models import Risk
from tests.conftest import FrozenClock, Keys
from tests.helpers import risk_body


def _created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_snapshot_names_risks_and_incidents_by_their_own_references(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    admin = keys.headers("admin")
    for title in ("Flood", "Fraud", "Fire"):
        _created(client.post("/api/v1/risks", json=risk_body(title=title, owner="ops")))
    _created(client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin))
    _created(client.post("/api/v1/incidents", json={"title": "Outage", "severity": "SEV2", "risk_ids": [2, 3]}))
    _created(client.post("/api/v1/incidents", json={"title": "Drill", "severity": "SEV4", "exercise": True}))
    content = _created(
        client.post("/api/v1/register/snapshots", json={"as_of": frozen_clock.now.isoformat()}, headers=admin)
    )["content"]
    requested = client.get("/api/v1/events", params={"type": "review.requested"}).json()["items"]

    with Session(engine) as session:
        risks = session.exec(select(Risk).order_by(col(Risk.id))).all()
        incidents = session.exec(select(Incident).order_by(col(Incident.id))).all()
    assert [(r["id"], r["reference"]) for r in content["risks"]] == [(r.id, r.reference) for r in risks]
    assert [i["reference"] for i in content["incidents"]] == [i.reference for i in incidents]
    assert content["incidents"][0]["risks"] == [risks[1].reference, risks[2].reference]
    assert [e["data"]["risks"] for e in requested] == [[r.reference for r in risks]]


def test_a_risk_is_overdue_in_a_snapshot_once_its_review_date_has_passed(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    risk = _created(client.post("/api/v1/risks", json=risk_body()))
    due = datetime.fromisoformat(risk["next_review_at"])
    frozen_clock.advance(due - frozen_clock.now + timedelta(days=1))

    def overdue_as_of(moment: datetime) -> bool:
        content = _created(
            client.post("/api/v1/register/snapshots", json={"as_of": moment.isoformat()}, headers=keys.headers("admin"))
        )["content"]
        assert content["summary"]["overdue"] == content["risks"][0]["overdue"]
        return bool(content["risks"][0]["overdue"])

    assert not overdue_as_of(due - timedelta(microseconds=1)) and not overdue_as_of(due)
    assert overdue_as_of(due + timedelta(microseconds=1)) and overdue_as_of(frozen_clock.now)
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["overdue"] is True  # the register's own rule agrees
