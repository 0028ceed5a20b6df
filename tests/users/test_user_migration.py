"""0010 on both databases: a register holding data under 0009 gains the user tables and keeps every row."""

from sqlalchemy import Engine, inspect, text
from sqlmodel import Session

from riskops import migrations
from riskops.apikeys import service as apikeys
from riskops.apikeys.models import Role
from riskops.risks import service as risks
from riskops.risks.matrices import service as matrices
from riskops.risks.models import RiskCreate
from riskops.users import service as users
from riskops.users.models import UserCreate
from tests.conftest import SETTINGS, WRITER
from tests.helpers import risk_body

USER_TABLES = {"app_user", "user_session", "password_token"}


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in every table the database has (the helper of that name counts the models' tables, 0010's too)."""
    names = [n for n in inspect(engine).get_table_names() if n != "alembic_version" and not n.startswith("risk_fts")]
    with engine.connect() as conn:
        return {name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name in names}


def test_0010_adds_users_to_a_register_with_data_and_keeps_it(empty_engine: Engine) -> None:
    migrations.upgrade(empty_engine)  # a risk written by today's service, then the schema taken back to 0009
    with Session(empty_engine, expire_on_commit=False) as session:
        matrices.ensure_default(session)
        risks.add_risk(session, RiskCreate.model_validate(risk_body(title="Kept")), WRITER, settings=SETTINGS)
        session.commit()
    migrations.downgrade(empty_engine, "0009")
    secret = "rko_storedUnder0009"
    with empty_engine.begin() as conn:  # by SQL: the model has columns 0009 lacks (api_key.user_id, 0011)
        conn.execute(
            text(
                "INSERT INTO api_key (name, role, key_hash, prefix, created_at, created_by)"
                " VALUES ('ops', 'write', :hash, 'rko_stored', CURRENT_TIMESTAMP, 'test')"
            ),
            {"hash": apikeys.hash_secret(secret)},
        )
    before = row_counts(empty_engine)
    migrations.upgrade(empty_engine)
    after = row_counts(empty_engine)
    assert {table: after[table] for table in before} == before and before["risk"] == before["api_key"] == 1
    assert after["app_user"] == after["user_session"] == after["password_token"] == 0
    with Session(empty_engine, expire_on_commit=False) as session:
        user = users.create_user(session, UserCreate(email="new@example.org", role=Role.admin), actor="test")
        users.set_password(session, user, "a password long enough", actor="test")
        session.commit()
        assert users.sign_in(session, "new@example.org", "a password long enough", SETTINGS) is not None
        session.commit()
        with session.connection() as conn:
            assert apikeys.authenticate(conn, apikeys.hash_secret(secret)) is not None  # keys as before
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT title FROM risk")).scalars().all() == ["Kept"]
        assert conn.execute(text("SELECT count(*) FROM user_session")).scalar_one() == 1
    migrations.downgrade(empty_engine, "0009")
    assert not USER_TABLES & set(row_counts(empty_engine)) and row_counts(empty_engine)["risk"] == 1
    migrations.upgrade(empty_engine)
