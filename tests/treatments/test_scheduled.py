"""Overdue treatment actions, driven by a frozen clock and hand-cranked ticks: told to the action's owner the day
after the due date, escalated to the risk's owner some days later, each once per due date; a moved date, a finished
action or a closed risk changes what is told."""

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from riskops.mail.models import EmailMessage
from riskops.notices.models import Notice
from riskops.risks import service as risks
from riskops.risks.models import RiskCreate
from riskops.risks.ratings import Rating
from riskops.treatments import scheduled, service
from riskops.treatments.models import ActionCreate
from riskops.worker import Worker
from tests.conftest import SETTINGS, WRITER, FrozenClock
from tests.treatments.helpers import add_action, change, events, new_risk

RISK_OWNER, ACTION_OWNER = "owner@example.com", "facilities@example.com"


def tick_at(worker: Worker, clock: FrozenClock, moment: datetime, times: int = 1) -> None:
    clock.advance(moment - clock.now)
    for _ in range(times):
        report = worker.tick()
        assert -1 not in report.values(), report


def told(client: TestClient, risk: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(type, due date, days overdue) of every overdue and escalation event about the risk's actions."""
    found = [e for e in events(client, "treatment.action_*", risk["reference"]) if "days_overdue" in e["data"]]
    return [(e["type"], e["data"]["due_date"], e["data"]["days_overdue"]) for e in found]


def treatment_mail(engine: Engine) -> list[tuple[str, str]]:
    """(to, subject) of the treatment mail queued, in order (the review kick-off mails owners too)."""
    with Session(engine) as session:
        rows = session.exec(select(EmailMessage).order_by(col(EmailMessage.id))).all()
        return [(m.to_address, m.subject) for m in rows if "treatment action" in m.subject]


def midnight(day: str, plus: timedelta = timedelta(seconds=1)) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC) + plus


def test_an_overdue_action_is_told_to_its_owner_then_escalated_to_the_risk_owner_once_each(
    client: TestClient, engine: Engine, worker: Worker, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client, owner=RISK_OWNER)
    add_action(client, risk, title="Barriers", owner=ACTION_OWNER, due_date="2026-07-10")
    tick_at(worker, frozen_clock, midnight("2026-07-11", -timedelta(seconds=1)), times=2)  # the due day itself
    assert told(client, risk) == [] and treatment_mail(engine) == []

    tick_at(worker, frozen_clock, midnight("2026-07-11"), times=3)
    assert told(client, risk) == [("treatment.action_overdue", "2026-07-10", 0)]
    [(to, subject)] = treatment_mail(engine)
    assert to == ACTION_OWNER and subject == f"[riskops] {risk['reference']} treatment action is overdue: Barriers"

    tick_at(worker, frozen_clock, midnight("2026-07-18", -timedelta(seconds=2)))
    assert len(told(client, risk)) == 1
    tick_at(worker, frozen_clock, midnight("2026-07-18"), times=3)
    assert told(client, risk) == [
        ("treatment.action_overdue", "2026-07-10", 0), ("treatment.action_escalated", "2026-07-10", 7),
    ]  # fmt: skip
    escalated = treatment_mail(engine)[1:]
    assert sorted(to for to, _ in escalated) == [ACTION_OWNER, RISK_OWNER]
    assert all("is 7 days overdue: Barriers" in subject for _, subject in escalated)
    tick_at(worker, frozen_clock, midnight("2026-09-01"), times=2)
    assert len(told(client, risk)) == 2 and len(treatment_mail(engine)) == 3


def test_a_moved_date_is_told_of_anew_and_a_finished_action_no_more(
    client: TestClient, engine: Engine, worker: Worker, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client, owner=RISK_OWNER)
    action = add_action(client, risk, owner=ACTION_OWNER, due_date="2026-07-10")
    tick_at(worker, frozen_clock, midnight("2026-07-05"))
    change(client, action, due_date="2026-07-20")
    tick_at(worker, frozen_clock, midnight("2026-07-11"))
    assert told(client, risk) == []
    tick_at(worker, frozen_clock, midnight("2026-07-21"))
    assert told(client, risk) == [("treatment.action_overdue", "2026-07-20", 0)]
    change(client, action, status="done")
    tick_at(worker, frozen_clock, midnight("2026-08-30"))
    assert told(client, risk) == [("treatment.action_overdue", "2026-07-20", 0)]
    assert [to for to, _ in treatment_mail(engine)] == [ACTION_OWNER]


def test_a_closed_risk_plan_raises_no_overdue_notice(
    client: TestClient, engine: Engine, worker: Worker, frozen_clock: FrozenClock
) -> None:
    risk = new_risk(client, owner=RISK_OWNER)
    add_action(client, risk, owner=ACTION_OWNER, due_date="2026-07-10")
    assert client.post(f"/api/v1/risks/{risk['id']}/close", json={"reason": "site sold"}).status_code == 200
    tick_at(worker, frozen_clock, midnight("2026-08-30"))
    assert told(client, risk) == [] and treatment_mail(engine) == []


def test_the_escalation_comes_after_the_days_the_settings_give(session: Session) -> None:
    risk_id = risks.add_risk(
        session, RiskCreate(title="Flood", category="ops", owner="ops", inherent=Rating(likelihood=2, impact=3)),
        WRITER, SETTINGS,
    )  # fmt: skip
    settings = SETTINGS.model_copy(update={"treatment_escalation_days": 2})
    data = ActionCreate.model_validate({"title": "Barriers", "owner": "ops", "due_date": "2026-07-10"})
    action = service.add_action(session, risks.get_risk(session, risk_id, for_update=True), data, WRITER, settings)
    session.commit()
    notices = session.exec(select(Notice).where(Notice.subject_type == scheduled.SUBJECT)).all()
    assert {(n.kind, n.subject_id, n.ref, n.due_at) for n in notices} == {
        (scheduled.ACTION_OVERDUE, action.id, "2026-07-10", midnight("2026-07-11", timedelta(0))),
        (scheduled.ACTION_ESCALATED, action.id, "2026-07-10", midnight("2026-07-13", timedelta(0))),
    }
