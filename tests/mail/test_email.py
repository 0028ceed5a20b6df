"""E-mail over a real SMTP server on 127.0.0.1 (aiosmtpd): review reminders to owners, escalation e-mail,
and a message that waits out an SMTP outage and is sent on a later tick."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from riskops import worker as worker_module
from riskops.config import Settings
from riskops.db import Database
from riskops.mail.models import EmailMessage
from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.helpers import free_port, risk_body

OWNER, ONCALL, SENDER = "owner@example.com", "oncall@example.com", "riskops@example.com"


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[tuple[list[str], Message]]:
        """(recipients, parsed message) of everything received, in order."""
        out = []
        for envelope in self.envelopes:
            raw = envelope.original_content or envelope.content
            assert isinstance(raw, bytes)
            out.append((list(envelope.rcpt_tos), message_from_bytes(raw)))
        return out


@contextmanager
def smtp_server(inbox: Inbox, port: int) -> Iterator[Controller]:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def mail_worker(engine: Engine, smtp_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    """A worker that sends e-mail to the test's SMTP port (whether or not a server listens there)."""
    settings = Settings(
        smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_sender=SENDER, webhook_allowed_networks="127.0.0.0/8"
    )
    worker = Worker(Database(engine), settings)
    # The quarterly review kick-off mails owners too (tested in tests/reviews); left out here, so that these
    # tests count only the mail that reminders and escalations cause, whatever quarter the clock moves into.
    monkeypatch.setattr(worker_module, "PERIODIC_JOBS", {})
    yield worker
    worker.pool.shutdown()
    worker.client.close()


def mail_rows(engine: Engine, address: str) -> list[EmailMessage]:
    with Session(engine) as session:
        query = select(EmailMessage).where(EmailMessage.to_address == address).order_by(col(EmailMessage.id))
        return list(session.exec(query))


def owned_risk(client: TestClient) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(owner=OWNER))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def to_reminder(clock: FrozenClock, risk: dict[str, Any]) -> None:
    reminder = datetime.fromisoformat(risk["next_review_at"]) - timedelta(days=14)
    clock.advance(reminder - clock.now + timedelta(minutes=1))


def test_review_reminder_is_mailed_to_an_owner_who_is_an_address(
    client: TestClient, engine: Engine, mail_worker: Worker, inbox: Inbox, smtp_port: int, frozen_clock: FrozenClock
) -> None:
    other = client.post("/api/v1/risks", json=risk_body(owner="head of infrastructure", title="Cooling fails"))
    assert other.status_code == 201, other.text
    risk = owned_risk(client)
    ref = risk["reference"]
    with smtp_server(inbox, smtp_port):
        assert mail_worker.tick()["emails"] == 0  # nothing is due yet
        to_reminder(frozen_clock, risk)
        report = mail_worker.tick()
        assert report["emails"] == 1, report
        assert mail_worker.tick()["emails"] == 0  # sent once, not again

    ((recipients, message),) = inbox.messages()  # the other owner is no address: no mail for that risk
    assert recipients == [OWNER]
    assert message["To"] == OWNER and message["From"] == SENDER
    assert ref in message["Subject"] and "due for review" in message["Subject"]
    assert risk["title"] in message.get_payload()
    assert inbox.envelopes[0].mail_from == SENDER
    (row,) = mail_rows(engine, OWNER)
    assert row.status == "sent" and row.attempts == 1 and row.last_error is None
    assert row.sent_at == frozen_clock.now


def test_escalation_level_with_an_address_delivers_a_mail(
    client: TestClient,
    keys: Keys,
    engine: Engine,
    mail_worker: Worker,
    inbox: Inbox,
    smtp_port: int,
    frozen_clock: FrozenClock,
) -> None:
    policy = {"name": "default", "levels": [{"wait_minutes": 5, "emails": [ONCALL]}]}
    saved = client.put("/api/v1/escalation-policies/default", json=policy, headers=keys.headers("admin"))
    assert saved.status_code == 200, saved.text
    declared = client.post("/api/v1/incidents", json={"title": "Payments API returns 500s", "severity": "SEV1"})
    assert declared.status_code == 201, declared.text
    ref = declared.json()["reference"]

    with smtp_server(inbox, smtp_port):
        frozen_clock.advance(timedelta(minutes=5) - timedelta(seconds=1))
        mail_worker.tick()
        assert inbox.envelopes == []
        frozen_clock.advance(timedelta(seconds=1))
        report = mail_worker.tick()
        assert report["notices"] == 1 and report["emails"] == 1, report
        mail_worker.tick()

    ((recipients, message),) = inbox.messages()
    assert recipients == [ONCALL]
    assert ref in message["Subject"] and "escalated" in message["Subject"]
    assert "Payments API returns 500s" in message["Subject"]
    (row,) = mail_rows(engine, ONCALL)
    assert row.status == "sent"


def test_a_mail_waits_out_an_smtp_outage_and_is_sent_after_the_retry_wait(
    client: TestClient, engine: Engine, mail_worker: Worker, inbox: Inbox, smtp_port: int, frozen_clock: FrozenClock
) -> None:
    risk = owned_risk(client)
    with smtp_server(inbox, smtp_port):
        assert mail_worker.tick()["emails"] == 0
    # The server is stopped: nothing listens on the port any more.

    to_reminder(frozen_clock, risk)
    report = mail_worker.tick()
    assert report["notices"] == 1 and report["emails"] == 0, report
    (row,) = mail_rows(engine, OWNER)
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error and "refused" in row.last_error.lower(), row.last_error
    assert row.lease_until is None and row.next_attempt_at > frozen_clock.now
    retry_at = row.next_attempt_at

    with smtp_server(inbox, smtp_port):
        frozen_clock.advance(retry_at - frozen_clock.now - timedelta(seconds=1))
        assert mail_worker.tick()["emails"] == 0  # back up, but the retry wait has not passed
        assert inbox.envelopes == []
        (row,) = mail_rows(engine, OWNER)
        assert row.status == "pending" and row.attempts == 1

        frozen_clock.advance(timedelta(seconds=1))
        assert mail_worker.tick()["emails"] == 1
        assert mail_worker.tick()["emails"] == 0

    ((recipients, message),) = inbox.messages()
    assert recipients == [OWNER] and risk["reference"] in message["Subject"]
    (row,) = mail_rows(engine, OWNER)
    assert row.status == "sent" and row.attempts == 2 and row.sent_at == frozen_clock.now


def test_a_mail_that_cannot_be_built_does_not_hold_up_the_rest(
    client: TestClient,
    keys: Keys,
    engine: Engine,
    mail_worker: Worker,
    inbox: Inbox,
    smtp_port: int,
    frozen_clock: FrozenClock,
) -> None:
    """An incident title with a line break ends up in an escalation mail's Subject header, which the e-mail
    library refuses to build. That one message may fail, but the owner's reminder queued after it must go out."""
    policy = {"name": "default", "levels": [{"wait_minutes": 5, "emails": [ONCALL]}]}
    saved = client.put("/api/v1/escalation-policies/default", json=policy, headers=keys.headers("admin"))
    assert saved.status_code == 200, saved.text
    title = "Payments API down\nsince the 09:00 deploy"
    declared = client.post("/api/v1/incidents", json={"title": title, "severity": "SEV1"})
    assert declared.status_code == 201, declared.text
    risk = owned_risk(client)

    with smtp_server(inbox, smtp_port):
        frozen_clock.advance(timedelta(minutes=5))
        first = mail_worker.tick()  # the escalation mail is queued and tried
        to_reminder(frozen_clock, risk)
        second = mail_worker.tick()  # the owner's review reminder is queued and tried
        third = mail_worker.tick()

    assert [recipients for recipients, _ in inbox.messages()].count([OWNER]) == 1, "the reminder was never sent"
    (escalation,) = mail_rows(engine, ONCALL)
    assert escalation.status == "sent" or escalation.last_error, "the escalation mail is stuck, with no error recorded"
    assert -1 not in (first["emails"], second["emails"], third["emails"]), (first, second, third)
