"""Alembic on both databases: from empty to head, down to nothing and back, and in step with the models."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import Session, select

from riskops import bootstrap, migrations
from riskops.db import make_engine
from riskops.matrices.models import RiskMatrix
from riskops.models import metadata
from tests.conftest import drop_postgres_database, new_postgres_database, postgres_or_skip


@pytest.fixture
def empty_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    postgres_or_skip()
    url = new_postgres_database()
    engine = make_engine(url)
    yield engine
    engine.dispose()
    drop_postgres_database(url)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_reaches_head_with_every_table(empty_engine: Engine) -> None:
    assert migrations.current(empty_engine) is None
    bootstrap.prepare_database(empty_engine)
    assert migrations.current(empty_engine) == migrations.head()
    assert _tables(empty_engine) == set(metadata.tables)


def test_downgrade_and_upgrade_round_trip(empty_engine: Engine) -> None:
    migrations.upgrade(empty_engine)
    migrations.downgrade(empty_engine, "base")
    assert _tables(empty_engine) == set()
    migrations.upgrade(empty_engine)
    assert _tables(empty_engine) == set(metadata.tables)


def test_migrations_match_the_models(empty_engine: Engine) -> None:
    migrations.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_prepare_is_idempotent(empty_engine: Engine) -> None:
    bootstrap.prepare_database(empty_engine)
    bootstrap.prepare_database(empty_engine)
    with Session(empty_engine) as session:
        assert [m.version for m in session.exec(select(RiskMatrix))] == [1]
