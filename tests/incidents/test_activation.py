"""Declaring and activating answer the incident as GET shows it (read after the commit, or stored with an
Idempotency-Key and replayed byte for byte), and write the plan with one insert per table."""

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from tests.conftest import FrozenClock
from tests.helpers import risk_body, row_counts


@contextmanager
def inserts(engine: Engine) -> Iterator[Counter[str]]:
    """How many INSERT statements each table got meanwhile (an executemany counts once)."""
    seen: Counter[str] = Counter()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        match = re.match(r"INSERT INTO (\w+)", statement)
        if match:
            seen[match.group(1)] += 1

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _risks(client: TestClient, count: int) -> list[str]:
    refs = []
    for i in range(count):
        response = client.post("/api/v1/risks", json=risk_body(title=f"Risk {i}"))
        assert response.status_code == 201, response.text
        refs.append(response.json()["reference"])
    return refs


def test_activation_and_declaration_answer_as_get_shows_the_incident(
    client: TestClient, playbooks: Path, frozen_clock: FrozenClock
) -> None:
    refs = _risks(client, 2)
    activated = client.post("/api/v1/playbooks/ransomware/activate", json={"risk_ids": refs, "description": "x"})
    declared = client.post("/api/v1/incidents", json={"title": "Flood", "severity": "SEV2", "risk_ids": refs[:1]})
    for response in (activated, declared):
        assert response.status_code == 201, response.text
        location = response.headers["location"]
        assert location == f"/api/v1/incidents/{response.json()['id']}"
        assert "idempotent-replayed" not in response.headers
        assert response.content == client.get(location).content


def test_a_replayed_activation_is_the_first_answer_byte_for_byte(
    client: TestClient, engine: Engine, playbooks: Path, frozen_clock: FrozenClock
) -> None:
    refs = _risks(client, 1)
    headers = {"Idempotency-Key": "pager-42"}
    body = {"risk_ids": refs}
    first = client.post("/api/v1/playbooks/ransomware/activate", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert first.content == client.get(first.headers["location"]).content
    reference = first.json()["reference"]
    assert client.post(f"/api/v1/incidents/{reference}/acknowledge").status_code == 200
    counts = row_counts(engine)
    again = client.post("/api/v1/playbooks/ransomware/activate", json=body, headers=headers)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content  # the first answer, not the incident as it is now
    assert again.headers["location"] == first.headers["location"]
    assert row_counts(engine) == counts
    declared = client.post(
        "/api/v1/incidents", json={"title": "Flood", "severity": "SEV2"}, headers={"Idempotency-Key": "d"}
    )
    replayed = client.post(
        "/api/v1/incidents", json={"title": "Flood", "severity": "SEV2"}, headers={"Idempotency-Key": "d"}
    )
    assert declared.status_code == replayed.status_code == 201
    assert replayed.content == declared.content == client.get(declared.headers["location"]).content


def test_an_activation_writes_each_table_with_one_insert(
    client: TestClient, engine: Engine, playbooks: Path, frozen_clock: FrozenClock
) -> None:
    refs = _risks(client, 3)
    with inserts(engine) as seen:
        response = client.post("/api/v1/playbooks/ransomware/activate", json={"risk_ids": refs})
    assert response.status_code == 201, response.text
    assert len(response.json()["steps"]) > 1 and len(response.json()["communications"]) > 1
    assert {"incident", "incident_risk", "incident_role", "incident_step", "incident_message"} <= set(seen)
    assert {"incident_timeline", "audit_entry", "event", "notice"} <= set(seen)
    # The linked risks' notices and the incident's are planned apart; every other table takes one insert.
    assert seen.pop("notice") == 2
    assert set(seen.values()) == {1}, seen
