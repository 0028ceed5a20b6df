"""Engine, sessions and the column types every domain shares."""

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, Table, create_engine, event, func, insert, make_url, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel

from riskops.errors import NotFound

# Stable constraint names, so that Alembic migrations can refer to them on both databases.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def primary_key() -> Any:
    """A table's autoincrement id. It is None only between `add` and the flush that inserts the row; every row
    the code hands on has been flushed or read, so the field is typed `int` (`id: int = primary_key()`)."""
    return Field(default=None, primary_key=True)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a table model, for statements the ORM does not write (bulk and conflict inserts)."""
    table: Table = getattr(model, "__table__")  # noqa: B009  # set on table models; absent from SQLModel's types
    return table


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite keeps no zone, so we add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    # Statement parameters (key hashes, secrets, personal data) stay out of error messages and so out of logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        # A pool as large as the worker thread pool: SQLite connections are cheap to keep, costly to reopen.
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=40, max_overflow=10, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    # A pooled connection the server dropped is found by the ping at checkout and replaced; an unreachable server
    # fails within the connect timeout (a 503 for the request) instead of holding a worker thread for minutes.
    connect_args = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": 5}
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=connect_args, **kwargs)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself, so writers can take the write lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()
        # SQLite's own lower() folds ASCII only; PostgreSQL's folds every letter. Case-insensitive matching
        # (owners, categories, and their expression indexes) must agree on both, so SQLite uses Python's.
        dbapi_conn.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY when another
        # writer got in between; writers therefore start IMMEDIATE and wait their turn instead.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """The engine and the two units of work every route, job and command uses.

    A unit of work opens and releases its connection inside one `with` block, so a request never holds
    a pooled connection while it waits for a worker thread (which could exhaust the pool under load).
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        sqlite = engine.dialect.name == "sqlite"
        self._writer = engine.execution_options(sqlite_begin="IMMEDIATE") if sqlite else engine
        # One SQLite file has one writer at a time; queueing writers here beats SQLite's sleeping busy handler.
        self._write_lock: AbstractContextManager[Any] = threading.Lock() if sqlite else nullcontext()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """Commit once at the end, roll back on any error: nothing is ever half-written."""
        with self._write_lock, Session(self._writer, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


# Integer keys are 32-bit on PostgreSQL: a larger number names no row (and must not reach the driver, which
# refuses it on PostgreSQL and beyond 2**63 on SQLite).
MAX_ID = 2**31 - 1
Row = TypeVar("Row", bound=SQLModel)


def storable(number: int) -> bool:
    """Whether an id or version number given by a client could name a row at all."""
    return 0 < number <= MAX_ID


def get_row(session: Session, model: type[Row], row_id: int, what: str, **options: Any) -> Row:
    """The row with this primary key, or a 404 naming `what` (also for a number no row can have)."""
    row = session.get(model, row_id, **options) if storable(row_id) else None
    if row is None:
        raise NotFound(f"{what} {row_id} does not exist.")
    return row


def insert_unless_present(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT DO NOTHING on either database: a unique key decides, not a read before the write."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def utc_from_json(text: str) -> datetime:
    """A timestamp a read model got as JSON text: SQLite's stored form (UTC, no zone) or PostgreSQL's (the
    session's zone), as the aware UTC datetime UTCDateTime gives."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def insert_numbered(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows in a few statements and give their new ids, in the order of `rows`."""
    table = table_of(model)
    if len(rows) == 1 or session.get_bind().dialect.name != "sqlite":
        numbered = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(session.execute(numbered, rows).scalars())
    # SQLite cannot say which returned id is which row's (SQLAlchemy would insert them one by one); but this
    # transaction holds the only write lock (BEGIN IMMEDIATE), so the ids are those SQLite would give: the next.
    first = (session.scalar(select(func.max(table.c.id))) or 0) + 1
    ids = list(range(first, first + len(rows)))
    session.execute(insert(table), [{**row, "id": row_id} for row, row_id in zip(rows, ids, strict=True)])
    return ids
