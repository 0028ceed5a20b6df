"""Migration 0017 on both databases: risks stored under 0016 gain a null kri_status and take KRIs; down again, the
risks are as they were and the KRI tables are gone; up once more, all is back."""

from datetime import UTC, datetime

from sqlalchemy import Engine, inspect, text
from sqlmodel import Session

from riskops import migrations
from riskops.kris import service as kris
from riskops.kris import values
from riskops.kris.models import KriCreate
from riskops.risks.matrices import service as matrices
from riskops.risks.models import Risk
from tests.conftest import SETTINGS, WRITER

KRI_TABLES = {"kri", "kri_threshold", "kri_risk", "kri_process", "kri_value", "kri_daily", "kri_transition"}


def _write_under_0016(engine: Engine) -> None:
    migrations.upgrade(engine, "0016")
    with Session(engine) as session:
        matrices.ensure_default(session)
        session.commit()
    at = "2026-07-01 09:00:00.000000" if engine.dialect.name == "sqlite" else "2026-07-01T09:00Z"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO risk (id, title, description, category, owner, status, treatment, matrix_version,"
                " inherent_likelihood, inherent_impact, inherent_score, inherent_level, score, level, created_at,"
                " updated_at, last_reviewed_at, next_review_at, next_review_set_by_hand, version)"
                " VALUES (1, 'Flood', '', 'operational', 'ops', 'open', 'mitigate', 1, 3, 4, 12, 'high', 12,"
                " 'high', :at, :at, :at, :at, false, 3)"
            ),
            {"at": at},
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('risk', 'id'), 1)"))


def test_risks_under_0016_take_kris_and_come_back_down_unchanged(empty_engine: Engine) -> None:
    _write_under_0016(empty_engine)
    migrations.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT id, kri_status, version FROM risk")).all() == [(1, None, 3)]

    with Session(empty_engine, expire_on_commit=False) as session:
        body = {"name": "River level", "unit": "m", "direction": "higher_is_worse", "amber": 3, "red": 4,
                "frequency": 60, "owner": "ops", "risks": ["R-0001"]}  # fmt: skip
        kri = kris.create_kri(session, KriCreate.model_validate(body), WRITER)
        moment = datetime(2026, 7, 1, 10, tzinfo=UTC)
        values.record(session, kri, [values.Measurement(moment, 4.5)], "push", WRITER, SETTINGS)
        session.commit()
        risk = session.get(Risk, 1)
        assert risk is not None and risk.kri_status == "red" and kri.reference == "K-0001"

    migrations.downgrade(empty_engine, "0016")
    names = set(inspect(empty_engine).get_table_names())
    assert KRI_TABLES.isdisjoint(names)
    assert "kri_status" not in {c["name"] for c in inspect(empty_engine).get_columns("risk")}
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT id, title FROM risk")).all() == [(1, "Flood")]
    migrations.upgrade(empty_engine)
    assert KRI_TABLES <= set(inspect(empty_engine).get_table_names())
