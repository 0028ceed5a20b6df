"""The database a benchmark runs on: a SQLite file of its own, or with --postgres a PostgreSQL database of its
own (created, and dropped afterwards); and seeding a register in bulk as a large import leaves it."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, make_url, text

from riskops import migrations
from riskops.db import make_engine

# The default for `make bench`: the PostgreSQL these machines run.
LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh(postgres: str | None, workdir: str, name: str) -> Iterator[str]:
    """The URL of an empty database: a file in workdir, or (postgres: an admin URL) a new database."""
    if postgres is None:
        yield f"sqlite:///{Path(workdir) / name}.db"  # workdir is absolute: sqlite:////tmp/...
        return
    database = f"riskops_bench_{name}"
    _admin(postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', f'CREATE DATABASE "{database}"')
    try:
        yield make_url(postgres).set(database=database).render_as_string(hide_password=False)
    finally:
        _admin(postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _admin(url: str, *statements: str) -> None:
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


@contextmanager
def seeding(engine: Engine) -> Iterator[None]:
    """Rows inserted inside are searchable and counted in the planner's statistics afterwards.

    On SQLite the text index's per-row trigger is set aside and the index rebuilt once at the end: row by row,
    one huge transaction of FTS5 updates grows worse than linearly."""
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        with engine.begin() as conn:
            trigger = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'risk_fts_insert'").scalar_one()
            conn.exec_driver_sql("DROP TRIGGER risk_fts_insert")
    yield
    if sqlite:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA cache_size=-262144")  # the rebuild's working set, in memory
            conn.exec_driver_sql("INSERT INTO risk_fts (risk_fts) VALUES ('rebuild')")
            conn.exec_driver_sql(trigger)
    if not sqlite:  # rows went in with their ids: the sequences must go on after them, as the service's would
        with engine.begin() as conn:
            for table in ("risk", "risk_assessment"):
                last = f"(SELECT coalesce(max(id), 1) FROM {table})"
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {last})")
    with engine.connect() as conn:  # what import_file does after a large import
        migrations.analyze(conn)
        if sqlite:  # fold the WAL back, so that the server starts on a clean file
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
