"""Owners asked to review: whoever gets a risk while a cycle is open is asked by the worker, once per owner and
cycle whatever the case of the name, and an admin can remind them."""

import csv
import io
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from riskops.mail.models import EmailMessage
from riskops.reviews import cycles
from riskops.reviews.models import ReviewCycle
from riskops.worker import Worker
from tests.conftest import ADMIN, SETTINGS, FrozenClock, Keys
from tests.helpers import assert_problem, risk_body, row_counts

IMPORT_HEADER = ["Title", "Description", "Category", "Owner", "Inherent_Likelihood", "Inherent_Impact"]


def _risk(client: TestClient, **overrides: object) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def requests(client: TestClient, *, reminder: bool = False) -> list[tuple[str, str, list[str]]]:
    """(cycle, owner, risks) of every review request (or reminder), oldest first."""
    response = client.get("/api/v1/events", params={"type": "review.requested", "limit": 1000})
    assert response.status_code == 200 and response.json()["next_cursor"] is None
    return [
        (e["data"]["cycle"], e["data"]["owner"], e["data"]["risks"])
        for e in response.json()["items"]
        if e["data"]["reminder"] is reminder
    ]


def tick(worker: Worker) -> None:
    report = worker.tick()
    assert -1 not in report.values(), report


def progress(client: TestClient, cycle: str) -> dict[str, dict[str, Any]]:
    return {p["owner"]: p for p in client.get(f"/api/v1/reviews/{cycle}").json()["progress"]}


def mail_to(engine: Engine, address: str) -> list[str]:
    with Session(engine) as session:
        query = select(EmailMessage.subject).where(EmailMessage.to_address == address).order_by(col(EmailMessage.id))
        return list(session.exec(query))


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


# ---- owners who get risks while a cycle is open ----


def test_owners_who_get_risks_while_a_cycle_is_open_are_asked_once(
    client: TestClient, worker: Worker, frozen_clock: FrozenClock
) -> None:
    dormant = _risk(client, owner="cto", title="Key person leaves")
    client.post(f"/api/v1/risks/{dormant['id']}/close", json={"reason": "a second DBA was hired"})
    tick(worker)  # the quarter's kick-off on a register with no open risk: nobody to ask yet
    assert client.get("/api/v1/reviews/2026Q3").json()["opened_by"] == "scheduler"
    assert requests(client) == []

    logged = _risk(client, owner="CISO", title="Phishing")
    assert requests(client) == []  # the worker asks, not the request that logged it
    tick(worker)
    assert requests(client) == [("2026Q3", "CISO", [logged["reference"]])]
    _risk(client, owner="ciso", title="Laptop theft")  # the same owner, spelt otherwise
    tick(worker)
    assert len(requests(client)) == 1

    rows = [["Payroll bureau fails", "", "supplier", "cfo", 3, 4], ["Stolen badge", "", "security", "Ciso", 2, 2]]
    out = io.StringIO()
    csv.writer(out).writerows([IMPORT_HEADER, *rows])
    imported = client.post("/api/v1/risks/import", files={"file": ("register.csv", out.getvalue().encode())})
    assert imported.status_code == 200, imported.text
    payroll, _ = imported.json()["created"]
    tick(worker)
    assert requests(client)[1:] == [("2026Q3", "cfo", [payroll])]

    moved = client.patch(f"/api/v1/risks/{logged['id']}", json={"owner": "dpo"})
    assert moved.status_code == 200, moved.text
    tick(worker)
    assert requests(client)[2:] == [("2026Q3", "dpo", [logged["reference"]])]

    frozen_clock.advance(timedelta(days=1))
    reopened = client.post(f"/api/v1/risks/{dormant['id']}/reopen", json={"reason": "the second DBA left"})
    assert reopened.status_code == 200, reopened.text
    tick(worker)
    tick(worker)
    assert requests(client)[3:] == [("2026Q3", "cto", [dormant["reference"]])]

    owners = progress(client, "2026Q3")
    assert sorted(owners) == ["cfo", "ciso", "cto", "dpo"]  # "ciso" and "Ciso" are one owner, first seen as "ciso"
    assert owners["ciso"]["risks"] == 2 and owners["ciso"]["requested_at"] is not None
    assert at(owners["cto"]["requested_at"]) == frozen_clock.now and owners["cto"]["reminded_at"] is None


def test_an_owner_is_asked_in_the_quarter_under_way_not_one_that_is_over(
    client: TestClient, worker: Worker, frozen_clock: FrozenClock
) -> None:
    tick(worker)  # opens 2026Q3, which nobody closes in time
    frozen_clock.advance(datetime(2026, 10, 1, 0, 5, tzinfo=UTC) - frozen_clock.now)
    risk = _risk(client, owner="ops")
    tick(worker)  # the new risk's check, then the 2026Q4 kick-off
    assert client.get("/api/v1/reviews/2026Q3").json()["state"] == "open"
    assert requests(client) == [("2026Q4", "ops", [risk["reference"]])]


def test_concurrent_requests_for_one_owner_ask_once(engine: Engine, backend: str, frozen_clock: FrozenClock) -> None:
    """Two transactions asking one owner at once: the unique key decides, and the second neither asks nor fails."""
    if backend != "postgresql":
        pytest.skip("SQLite writers take turns: the two never overlap")
    with Session(engine) as session:
        cycles.open_cycle(session, "2026Q3", ADMIN, settings=SETTINGS)
        session.commit()
    answers: list[bool] = []
    failures: list[BaseException] = []

    def second() -> None:
        try:
            with Session(engine) as session:
                answers.append(cycles.request_review(session, session.get_one(ReviewCycle, "2026Q3"), "ciso"))
                session.commit()
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    with Session(engine) as first:
        assert cycles.request_review(first, first.get_one(ReviewCycle, "2026Q3"), "CISO") is True
        other = threading.Thread(target=second)
        other.start()
        other.join(timeout=1)  # it waits on the first transaction's row with the same owner key
        first.commit()
    other.join(timeout=60)
    assert not other.is_alive() and failures == [] and answers == [False]


# ---- reminders ----


def test_admin_reminds_owners_with_open_risks(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    admin = keys.headers("admin")
    ops = _risk(client, owner="ops@example.com")
    first = _risk(client, owner="CISO", title="Phishing")
    second = _risk(client, owner="ciso", title="Laptop theft")
    gone = _risk(client, owner="facilities", title="Old office")
    client.post(f"/api/v1/risks/{gone['id']}/close", json={"reason": "moved out"})
    assert client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin).status_code == 201
    opened_at = frozen_clock.now
    assert len(requests(client)) == 2

    frozen_clock.advance(timedelta(days=30))
    assert_problem(client.post("/api/v1/reviews/2026Q3/remind"), 403)
    everyone = client.post("/api/v1/reviews/2026Q3/remind", headers=admin)
    assert everyone.status_code == 200, everyone.text
    assert everyone.json()["reminded"] == ["CISO", "ops@example.com"] and everyone.json()["cycle"] == "2026Q3"
    assert at(everyone.json()["reminded_at"]) == frozen_clock.now
    assert requests(client, reminder=True) == [
        ("2026Q3", "CISO", [first["reference"], second["reference"]]),
        ("2026Q3", "ops@example.com", [ops["reference"]]),
    ]
    assert len(requests(client)) == 2  # a reminder is no new request
    subjects = mail_to(engine, "ops@example.com")
    assert len(subjects) == 2 and subjects[1].startswith("[riskops] Reminder: quarterly risk review 2026Q3")
    owners = progress(client, "2026Q3")
    assert at(owners["CISO"]["requested_at"]) == opened_at
    assert at(owners["CISO"]["reminded_at"]) == at(owners["ops@example.com"]["reminded_at"]) == frozen_clock.now

    frozen_clock.advance(timedelta(days=1))
    one = client.post("/api/v1/reviews/2026Q3/remind", json={"owner": "ciso"}, headers=admin)
    assert one.status_code == 200 and one.json()["reminded"] == ["CISO"]
    owners = progress(client, "2026Q3")
    assert at(owners["CISO"]["reminded_at"]) == frozen_clock.now
    assert at(owners["ops@example.com"]["reminded_at"]) == frozen_clock.now - timedelta(days=1)
    assert len(mail_to(engine, "ops@example.com")) == 2

    before = row_counts(engine)
    assert_problem(client.post("/api/v1/reviews/2026Q3/remind", json={"owner": "facilities"}, headers=admin), 404)
    assert_problem(client.post("/api/v1/reviews/2026Q3/remind", json={"owner": "nobody"}, headers=admin), 404)
    assert_problem(client.post("/api/v1/reviews/2026Q3/remind", json={"who": "ciso"}, headers=admin), 422, "body.who")
    assert_problem(client.post("/api/v1/reviews/2031Q1/remind", headers=admin), 404)
    assert row_counts(engine) == before

    history = client.get("/api/v1/audit", params={"entity_type": "review_cycle", "entity_id": "2026Q3"}).json()
    reminded = [e for e in history["items"] if e["action"] == "reminded"]
    assert [(e["actor"], e["changes"]["reminded"]["new"]) for e in reminded] == [
        ("admin-key", ["CISO", "ops@example.com"]), ("admin-key", ["CISO"]),
    ]  # fmt: skip
    assert [at(e["at"]) for e in reminded] == [frozen_clock.now - timedelta(days=1), frozen_clock.now]

    assert client.post("/api/v1/reviews/2026Q3/close", headers=admin).status_code == 200
    before = row_counts(engine)
    assert_problem(client.post("/api/v1/reviews/2026Q3/remind", headers=admin), 409)
    assert row_counts(engine) == before


def test_a_reminder_before_the_worker_asks_counts_as_the_request(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    admin = keys.headers("admin")
    client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin)
    risk = _risk(client, owner="ops")  # its owner check is still to come
    reminded = client.post("/api/v1/reviews/2026Q3/remind", json={"owner": "OPS"}, headers=admin)
    assert reminded.json()["reminded"] == ["ops"]
    tick(worker)
    assert requests(client, reminder=True) == [("2026Q3", "ops", [risk["reference"]])]
    assert requests(client) == []
    assert progress(client, "2026Q3")["ops"]["requested_at"] is not None
