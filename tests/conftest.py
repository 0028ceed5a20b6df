"""Real databases for every test: a SQLite file and a PostgreSQL database of its own.

PostgreSQL tests skip only when no server is reachable; with RISKOPS_REQUIRE_POSTGRES=1 (CI) that is a failure.
"""

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from sqlmodel import Session

from riskops import bootstrap, clock
from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.apikeys.service import Principal
from riskops.app import create_app
from riskops.config import Settings
from riskops.db import Database, make_engine
from riskops.models import metadata
from riskops.risks.matrices import service as matrices
from riskops.worker import Worker

PG_URL = os.environ.get("RISKOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_or_skip() -> None:
    try:
        with create_engine(PG_URL).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        message = f"PostgreSQL is not reachable at {PG_URL}: {exc}"
        if os.environ.get("RISKOPS_REQUIRE_POSTGRES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def new_postgres_database(admin_url: str = PG_URL) -> str:
    """A database of its own on the server, so that parallel runs and leftovers never meet."""
    name = f"riskops_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str, admin_url: str = PG_URL) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def _migrated(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine | None]]:
    """Migrate once per backend: a template SQLite file to copy, or one PostgreSQL database to truncate."""
    if backend == "sqlite":
        template = tmp_path_factory.mktemp("template") / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        bootstrap.prepare_database(engine)
        engine.dispose()
        yield str(template), None
        return
    postgres_or_skip()
    url = new_postgres_database()
    engine = make_engine(url)
    bootstrap.prepare_database(engine)
    yield url, engine
    engine.dispose()
    drop_postgres_database(url)


@pytest.fixture
def database_url(backend: str, _migrated: tuple[str, Engine | None], tmp_path: Path) -> str:
    """A migrated, empty database (but for the default matrix) for one test."""
    location, engine = _migrated
    if engine is None:
        path = tmp_path / "riskops.db"
        shutil.copy(location, path)
        return f"sqlite:///{path}"
    tables = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:  # TRUNCATE fires no row triggers, so history tables can be emptied here
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    with Session(engine) as session:
        matrices.ensure_default(session)
        session.commit()
    return location


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, as a newcomer has before the first start."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    postgres_or_skip()
    url = new_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def empty_engine(empty_database_url: str) -> Iterator[Engine]:
    """An engine on that database, for the migration tests to upgrade step by step."""
    engine = make_engine(empty_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


ADMIN = Principal(key_id=0, name="alice", role=Role.admin)
# The settings the service functions are given in tests (the defaults, and loopback receivers allowed).
SETTINGS = Settings(scheduler_enabled=False, webhook_allowed_networks="127.0.0.0/8", smtp_host=None)
WRITER = Principal(key_id=0, name="bob", role=Role.write)


@dataclass
class Keys:
    read: str
    write: str
    admin: str

    def headers(self, role: str = "write") -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


@pytest.fixture
def keys(engine: Engine) -> Keys:
    secrets = {}
    with Session(engine) as session:
        for role in Role:
            _, secrets[role.value] = apikeys.create_key(
                session, ApiKeyCreate(name=f"{role.value}-key", role=role), created_by="test"
            )
        session.commit()
    return Keys(**secrets)


@pytest.fixture
def client(engine: Engine, keys: Keys) -> Iterator[TestClient]:
    """The app over HTTP (in process), authenticated as a writer unless a test says otherwise."""
    # The scheduler is driven by hand in tests (tick()), with the frozen clock, not by a background thread.
    settings = Settings(scheduler_enabled=False, webhook_allowed_networks="127.0.0.0/8")
    with TestClient(create_app(settings, engine=engine), headers=keys.headers("write")) as client:
        yield client


class FrozenClock:
    def __init__(self, start: datetime):
        self.now = start
        clock.set_fixed(start)

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        clock.set_fixed(self.now)
        return self.now


@pytest.fixture
def frozen_clock() -> Iterator[FrozenClock]:
    yield FrozenClock(datetime(2026, 7, 1, 9, 0, tzinfo=UTC))
    clock.set_fixed(None)


PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"


@pytest.fixture
def playbooks(engine: Engine) -> Path:
    """The shipped library, synced into the test database as `riskops serve` does at start."""
    bootstrap.sync_playbooks(engine, PLAYBOOKS)
    return PLAYBOOKS


@pytest.fixture
def worker(engine: Engine) -> Iterator[Worker]:
    """The scheduler's work, driven by hand: call worker.tick() after moving the frozen clock."""
    runner = Worker(Database(engine), Settings(webhook_allowed_networks="127.0.0.0/8", smtp_host=None))
    yield runner
    runner.pool.shutdown()
    runner.client.close()
