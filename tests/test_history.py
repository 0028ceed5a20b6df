"""History is append-only: the database itself refuses to change or erase audit, assessments and timelines."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from tests.helpers import risk_body


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entry SET actor = 'mallory'",
        "DELETE FROM audit_entry",
        "UPDATE risk_assessment SET rationale = 'rewritten'",
        "DELETE FROM risk_assessment",
        "UPDATE incident_timeline SET text = 'rewritten'",
        "DELETE FROM incident_timeline",
    ],
)
def test_history_rows_cannot_be_rewritten(client: TestClient, engine: Engine, statement: str) -> None:
    assert client.post("/api/v1/risks", json=risk_body()).status_code == 201
    assert client.post("/api/v1/incidents", json={"title": "Outage", "severity": "SEV2"}).status_code == 201
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_entry WHERE actor = 'write-key'")).scalar_one() >= 1
