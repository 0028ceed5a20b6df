"""Alembic, driven from code: the schema is created and changed only by these migrations."""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "riskops:migrations")
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(config()).get_current_head() or ""


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def exclusive(engine: Engine) -> Iterator[Connection]:
    """Several instances may start at once on PostgreSQL: one migrates, the others wait for it."""
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(727165)"))
            conn.commit()
        elif sqlite:
            # SQLite changes a column by rebuilding the table (copy, drop, rename); with foreign keys enforced,
            # dropping a table that rows refer to fails. They are off while migrating (a pragma that only takes
            # effect outside a transaction) and every reference is checked afterwards.
            _sqlite(conn).execute("PRAGMA foreign_keys=OFF")
        try:
            yield conn
        finally:
            if engine.dialect.name == "postgresql":
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(727165)"))
                conn.commit()
            elif sqlite:
                conn.rollback()
                raw = _sqlite(conn)
                raw.execute("PRAGMA foreign_keys=ON")
                broken = raw.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows pointing at nothing: {broken[:5]}")


def _sqlite(conn: Connection) -> sqlite3.Connection:
    """The driver's own connection: pragmas that must run outside SQLAlchemy's transaction go through it."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


# Text search lives in objects of each database's own kind (migration 0008), which the models cannot describe.
SEARCH_TABLE_PREFIX = "risk_fts"
SEARCH_INDEXES = frozenset({"ix_risk_title_trgm", "ix_risk_description_trgm"})


def in_models(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's include_name: False for the search objects, so comparing with the models leaves them out."""
    if type_ == "table":
        return not (name or "").startswith(SEARCH_TABLE_PREFIX)
    return not (type_ == "index" and name in SEARCH_INDEXES)


def upgrade(engine: Engine, revision: str = "head") -> None:
    with exclusive(engine) as conn:
        command.upgrade(config(conn), revision)
        conn.commit()
        analyze(conn)


def analyze(conn: Connection) -> None:
    """Refresh the planner's statistics. Without them SQLite picks an index by guesswork, which at a million
    risks turns a page into a scan. SQLite reads every index (about a second per million risks; a sample by
    analysis_limit misjudges status and overdue); PostgreSQL samples."""
    if conn.dialect.name == "sqlite":
        raw = _sqlite(conn)
        raw.execute("ANALYZE")
        raw.commit()
    elif conn.dialect.name == "postgresql":
        conn.execute(text("ANALYZE"))
        conn.commit()


def downgrade(engine: Engine, revision: str) -> None:
    with exclusive(engine) as conn:
        command.downgrade(config(conn), revision)
        conn.commit()
