from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from riskops.mail.models import EmailMessage
from tests.helpers import risk_body

OWNER = "risk.owner@example.org"


def add_risk(client: TestClient, **overrides: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/risks", json=risk_body(owner=OWNER, **overrides))
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def kri_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Failed logins per minute",
        "description": "Sign-in failures across the customer portal.",
        "unit": "per minute",
        "direction": "higher_is_worse",
        "amber": 50,
        "red": 100,
        "frequency": "PT15M",
        "owner": "kri.owner@example.org",
    }
    body.update(overrides)
    return body


def add_kri(client: TestClient, **overrides: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/kris", json=kri_body(**overrides))
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def mail_to(engine: Engine, address: str) -> list[str]:
    """The subjects of the e-mails queued for an address, oldest first."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(EmailMessage.subject).where(EmailMessage.to_address == address).order_by(col(EmailMessage.id))
            )
        )
