"""The library's deadline: a control falling due for its next test."""

from datetime import UTC, datetime, time
from typing import Any

from sqlmodel import Session

from riskops.config import Settings
from riskops.events import service as events
from riskops.mail import service as mail
from riskops.notices import service as scheduler
from riskops.notices.models import Notice
from riskops.notices.service import NoticeHandler
from riskops.risks.library import Control, LibraryStatus

TEST_DUE = "control.test_due"
KINDS = (TEST_DUE,)


def plan_test_due(session: Session, control: Control) -> None:
    """Re-plan after any change: the notice is keyed by the due date, so one date is announced once, and a notice
    for a date that moved (or a control retired) is dropped."""
    scheduler.cancel(session, "control", control.id, KINDS)
    if control.status != LibraryStatus.active or control.next_test_due is None:
        return
    due_at = datetime.combine(control.next_test_due, time.min, UTC)  # the start of the day it is due, UTC
    scheduler.plan(
        session, [scheduler.notice(TEST_DUE, "control", control.id, control.next_test_due.isoformat(), due_at)]
    )


def event_data(control: Control) -> dict[str, Any]:
    """What every event about a library control says of it."""
    return {
        "id": control.id, "reference": control.reference, "title": control.title, "owner": control.owner,
        "type": str(control.type), "effectiveness": str(control.effectiveness),
        "last_tested_on": control.last_tested_on.isoformat() if control.last_tested_on else None,
        "next_test_due": control.next_test_due.isoformat() if control.next_test_due else None,
    }  # fmt: skip


def announce_test_due(session: Session, notice: Notice, settings: Settings) -> None:
    """The control's next test is due: tell the subscribers, and the owner by e-mail."""
    control = session.get(Control, notice.subject_id)
    if control is None or control.status != LibraryStatus.active or control.next_test_due is None:
        return
    if control.next_test_due.isoformat() != notice.ref:
        return  # the date moved since this was planned
    events.emit(session, TEST_DUE, "control", control.reference, event_data(control))
    if mail.looks_like_address(control.owner):
        mail.queue(
            session, control.owner, f"[riskops] {control.reference} is due for testing",
            f"{control.reference} {control.title} is due for its next test on {control.next_test_due:%Y-%m-%d}; "
            f"it is {control.effectiveness} so far.\n\nRecord the test, with its evidence, in riskops.",
        )  # fmt: skip


NOTICE_HANDLERS: dict[str, NoticeHandler] = {TEST_DUE: announce_test_due}
