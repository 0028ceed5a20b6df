"""Ended sessions and old set-password links are swept away once an hour; failed sign-ins racing from many
connections are all counted (the user's row is locked while each is counted)."""

import threading
from datetime import timedelta

import sqlmodel
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from riskops.config import Settings
from riskops.db import Database
from riskops.users import scheduled, service
from riskops.users.models import PasswordToken, User, UserSession
from tests.conftest import FrozenClock
from tests.users.conftest import PASSWORD, add_user

SETTINGS = Settings(scheduler_enabled=False, sign_in_max_failures=5)


def count(engine: Engine, table: type[UserSession] | type[PasswordToken]) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def test_ended_sessions_and_old_links_are_swept_once_an_hour(engine: Engine, frozen_clock: FrozenClock) -> None:
    user_id = add_user(engine, "sam@example.org")
    database = Database(engine)
    with database.write() as session:
        live = service.sign_in(session, "sam@example.org", PASSWORD, SETTINGS)
        service.sign_in(session, "sam@example.org", PASSWORD, SETTINGS)
        service.issue_password_link(session, user_id, SETTINGS, actor="test")
    assert live is not None and count(engine, UserSession) == 2
    frozen_clock.advance(timedelta(minutes=20))
    with database.write() as session:  # one session stays in use; the other idles
        found = service.session_principal(session, live.token, SETTINGS)
        assert found is not None
        service.touch_session(session, found.session_id)
    frozen_clock.advance(timedelta(minutes=SETTINGS.session_idle_minutes - 10))
    assert scheduled.sweep_sessions(database, SETTINGS) is True
    assert count(engine, UserSession) == 1  # the idle one is gone, the one in use is kept
    assert scheduled.sweep_sessions(database, SETTINGS) is False  # claimed for this hour already
    frozen_clock.advance(timedelta(hours=SETTINGS.password_link_hours) + service.LINK_KEPT)
    assert count(engine, PasswordToken) == 1
    assert scheduled.sweep_sessions(database, SETTINGS) is True
    assert count(engine, UserSession) == 0 and count(engine, PasswordToken) == 0


def test_racing_failed_sign_ins_are_all_counted_and_lock_the_account(engine: Engine) -> None:
    add_user(engine, "ray@example.org")
    database = Database(engine)
    start = threading.Barrier(SETTINGS.sign_in_max_failures - 1)
    answers: list[object] = []

    def attempt() -> None:
        start.wait()
        with database.write() as session:
            answers.append(service.sign_in(session, "ray@example.org", "not the password", SETTINGS))

    threads = [threading.Thread(target=attempt) for _ in range(SETTINGS.sign_in_max_failures - 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [None] * (SETTINGS.sign_in_max_failures - 1)
    with Session(engine) as session:
        user = session.exec(sqlmodel.select(User).where(User.email == "ray@example.org")).one()
        assert user.failed_sign_ins == SETTINGS.sign_in_max_failures - 1 and user.locked_until is None
    with database.write() as session:  # the one more that reaches the limit locks, even with the right password next
        assert service.sign_in(session, "ray@example.org", "still not it", SETTINGS) is None
    with database.write() as session:
        assert service.sign_in(session, "ray@example.org", PASSWORD, SETTINGS) is None
