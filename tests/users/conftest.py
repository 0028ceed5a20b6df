"""A console client (no API key) and users with passwords, for the users and sign-in tests."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.apikeys.models import Role
from riskops.app import create_app
from riskops.config import Settings
from riskops.users import service as users
from riskops.users.models import UserCreate

PASSWORD = "correct horse battery"
# Failed sign-ins answer at once here: the delay is a setting, and these tests count failures, not seconds.
CONSOLE_SETTINGS = Settings(scheduler_enabled=False, sign_in_failure_delay_seconds=0)


def add_user(engine: Engine, email: str, role: Role = Role.write, password: str | None = PASSWORD) -> int:
    with Session(engine, expire_on_commit=False) as session:
        user = users.create_user(session, UserCreate(email=email, role=role), actor="test")
        if password is not None:
            users.set_password(session, user, password, actor="test")
        session.commit()
        return user.id


@pytest.fixture
def console(engine: Engine) -> Iterator[TestClient]:
    """A browser: no API key, cookies kept, redirects shown rather than followed."""
    with TestClient(create_app(CONSOLE_SETTINGS, engine=engine), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Signs the client in; returns the session's CSRF token."""
    answer = client.post("/console/sign-in", data={"email": email, "password": password})
    assert answer.status_code == 303, answer.text
    session = client.get("/console/session")
    assert session.status_code == 200, session.text
    token: str = session.json()["csrf_token"]
    return token
