"""An incident's pending notices in each state are exactly those incidents.scheduled says the state watches,
whichever way it got there (people over the API, or an alert source), so no second planner can drift from it."""

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, and_, col, or_, select

from riskops.incidents import scheduled
from riskops.incidents.models import IncidentMessage, IncidentState, IncidentStep
from riskops.notices.models import Notice
from tests.conftest import Keys
from tests.incidents.support import finish_obligations
from tests.integrations.support import bearer, make_integration

# Escalation, an RTO and an MTPD, required steps and communications, and optional communications.
PLAYBOOK = "personal-data-breach"
SUMMARY = {"what_happened": "Misdirected export.", "impact": "1,200 customers.", "root_cause": "Shared alias."}


def expected(state: str) -> set[str]:
    return {kind for watch in scheduled.watches(IncidentState(state)) for kind in scheduled.KINDS[watch]}


def pending(engine: Engine, incident_id: int) -> set[str]:
    """The kinds of the unfired notices about the incident, its steps and its communications."""
    steps = select(IncidentStep.id).where(IncidentStep.incident_id == incident_id)
    messages = select(IncidentMessage.id).where(IncidentMessage.incident_id == incident_id)
    about = or_(
        and_(col(Notice.subject_type) == "incident", col(Notice.subject_id) == incident_id),
        and_(col(Notice.subject_type) == "step", col(Notice.subject_id).in_(steps)),
        and_(col(Notice.subject_type) == "message", col(Notice.subject_id).in_(messages)),
    )
    with Session(engine) as session:
        return set(session.exec(select(Notice.kind).where(col(Notice.fired_at).is_(None), about)))


def test_the_states_watch_what_an_incident_is_owed() -> None:
    assert expected("declared") == {
        "incident.escalation", "incident.breach_imminent", "incident.breached", "incident.mtpd_imminent",
        "incident.mtpd_breached", "step.due", "step.overdue", "communication.due", "communication.overdue",
    }  # fmt: skip
    assert expected("acknowledged") == expected("mitigated") == expected("declared") - {"incident.escalation"}
    assert expected("resolved") == {"step.due", "step.overdue", "communication.due", "communication.overdue"}
    assert expected("closed") == set()


def test_moved_by_people_each_state_has_the_notices_it_watches(
    client: TestClient, engine: Engine, playbooks: Path
) -> None:
    response = client.post(f"/api/v1/playbooks/{PLAYBOOK}/activate", json={})
    assert response.status_code == 201, response.text
    incident: dict[str, Any] = response.json()
    assert pending(engine, incident["id"]) == expected("declared")
    for action in ("acknowledge", "mitigate", "resolve", "reopen", "mitigate", "resolve"):
        moved = client.post(f"/api/v1/incidents/{incident['id']}/{action}", json={})
        assert moved.status_code == 200, moved.text
        state = moved.json()["state"]
        assert pending(engine, incident["id"]) == expected(state), (action, state)

    finish_obligations(client, incident)  # the optional communications are left: they keep their reminders
    assert pending(engine, incident["id"]) == {"communication.due", "communication.overdue"}
    closed = client.post(f"/api/v1/incidents/{incident['id']}/close", json={"summary": SUMMARY})
    assert closed.status_code == 200, closed.text
    assert pending(engine, incident["id"]) == expected("closed")


def test_moved_by_an_alert_source_each_state_has_the_notices_it_watches(
    client: TestClient, keys: Keys, engine: Engine, playbooks: Path
) -> None:
    integration = make_integration(client, keys, "generic", default_route={"playbook": PLAYBOOK})

    def send(action: str) -> dict[str, Any]:
        alert = {"action": action, "dedup_key": "export/alias", "title": "Customer export misdirected"}
        response = client.post("/api/v1/inbound/generic", json=alert, headers=bearer(integration["token"]))
        assert response.status_code == 202, response.text
        answer: dict[str, Any] = response.json()
        shown = client.get(f"/api/v1/incidents/{answer['incident_id']}")
        state: str = shown.json()["state"]
        assert pending(engine, answer["incident_id"]) == expected(state), (action, answer["outcome"], state)
        return answer

    assert send("trigger")["outcome"] == "opened"
    assert send("acknowledge")["outcome"] == "acknowledged"
    assert send("resolve")["outcome"] == "resolved"
    assert send("trigger")["outcome"] == "reopened"  # within the flap window
    assert send("resolve")["outcome"] == "resolved"
