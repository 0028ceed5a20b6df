"""A control due for testing raises control.test_due once per due date, through the notices any worker fires."""

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from riskops.events.models import Event
from riskops.mail.models import EmailMessage
from riskops.worker import Worker
from tests.conftest import FrozenClock
from tests.controls.test_library import TODAY, add_control
from tests.controls.test_testing import a_test


def due_events(engine: Engine) -> list[Event]:
    with Session(engine) as session:
        return list(session.exec(select(Event).where(Event.type == "control.test_due").order_by(col(Event.id))))


def test_a_due_test_is_announced_once_per_due_date(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock, worker: Worker
) -> None:
    add_control(client, test_interval_days=30, next_test_due=(TODAY + timedelta(days=2)).isoformat())
    worker.tick()
    assert due_events(engine) == []
    frozen_clock.advance(timedelta(days=2))
    worker.tick()
    worker.tick()  # a second worker, or the next tick, finds it fired
    [due] = due_events(engine)
    assert due.subject_type == "control" and due.subject_id == "C-0001"
    assert due.data["next_test_due"] == (TODAY + timedelta(days=2)).isoformat()
    assert due.data["owner"] == "ciso@example.org" and due.data["effectiveness"] == "untested"
    with Session(engine) as session:
        [mail] = session.exec(select(EmailMessage)).all()
    assert mail.to_address == "ciso@example.org" and "C-0001 is due for testing" in mail.subject
    assert client.get("/api/v1/controls?due=true").json()["items"][0]["reference"] == "C-0001"
    # The test starts the next interval: due again 30 days after it, announced then, once.
    tested_on = frozen_clock.now.date()
    assert client.post("/api/v1/controls/C-0001/tests", json=a_test(tested_on=tested_on.isoformat())).status_code == 201
    frozen_clock.advance(timedelta(days=29))
    worker.tick()
    assert len(due_events(engine)) == 1
    frozen_clock.advance(timedelta(days=1))
    worker.tick()
    assert [e.data["next_test_due"] for e in due_events(engine)][1:] == [(tested_on + timedelta(days=30)).isoformat()]
    assert due_events(engine)[1].data["effectiveness"] == "ineffective"


def test_a_moved_date_or_a_retirement_drops_the_notice(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock, worker: Worker
) -> None:
    add_control(client, test_interval_days=None, next_test_due=(TODAY + timedelta(days=1)).isoformat())
    add_control(client, test_interval_days=None, next_test_due=(TODAY + timedelta(days=1)).isoformat())
    client.patch("/api/v1/controls/C-0001", json={"next_test_due": (TODAY + timedelta(days=5)).isoformat()})
    client.patch("/api/v1/controls/C-0002", json={"status": "retired"})
    frozen_clock.advance(timedelta(days=2))
    worker.tick()
    assert due_events(engine) == []
    frozen_clock.advance(timedelta(days=3))
    worker.tick()
    assert [e.subject_id for e in due_events(engine)] == ["C-0001"]
