"""Migration 0015 adds the continuity tables beside a register in use: every risk stays as it was, links to it can
be stored, and the downgrade takes the tables away again without touching a risk."""

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session

from riskops import migrations
from riskops.risks.matrices import service as matrices

TABLES = {"business_process", "asset", "process_dependency", "process_asset", "risk_process", "risk_asset"}


def test_0015_adds_the_continuity_tables_and_keeps_every_risk(empty_engine: Engine) -> None:
    revision = ScriptDirectory.from_config(migrations.config()).get_revision("0015")
    assert revision is not None and isinstance(revision.down_revision, str)
    previous = revision.down_revision
    migrations.upgrade(empty_engine, previous)
    with Session(empty_engine) as session:
        matrices.ensure_default(session)
        session.commit()
    at = "2026-07-01 09:00:00.000000" if empty_engine.dialect.name == "sqlite" else "2026-07-01T09:00Z"
    # Written as rows, not through today's models: those know columns later migrations add (0017's kri_status).
    with empty_engine.begin() as conn:
        for title in ("Frankfurt site floods", "Payroll bureau goes bust"):
            conn.execute(
                text(
                    "INSERT INTO risk (title, description, category, owner, status, treatment, matrix_version,"
                    " inherent_likelihood, inherent_impact, inherent_score, inherent_level, score, level, created_at,"
                    " updated_at, last_reviewed_at, next_review_at, next_review_set_by_hand, version)"
                    " VALUES (:title, '', 'operational', 'ops', 'open', 'mitigate', 1, 3, 4, 12, 'high', 12,"
                    " 'high', :at, :at, :at, :at, false, 1)"
                ),
                {"title": title, "at": at},
            )
    query = text("SELECT id, title, score, level, version FROM risk ORDER BY id")
    with empty_engine.connect() as conn:
        before = [tuple(row) for row in conn.execute(query)]
    assert len(before) == 2

    migrations.upgrade(empty_engine, "0015")
    assert TABLES <= set(inspect(empty_engine).get_table_names())
    with empty_engine.begin() as conn:
        assert [tuple(row) for row in conn.execute(query)] == before
        conn.execute(
            text(
                "INSERT INTO business_process (key, name, description, owner, criticality, impact_over_time, status,"
                " created_at, updated_at, version) VALUES ('payroll', 'Payroll', '', 'hr', 'high', '[]', 'active',"
                " :at, :at, 1)"
            ),
            {"at": at},
        )
        conn.execute(
            text("INSERT INTO risk_process (risk_id, process_id, linked_at, linked_by) VALUES (:risk, 1, :at, 'x')"),
            {"risk": before[0][0], "at": at},
        )
    migrations.downgrade(empty_engine, previous)
    assert not TABLES & set(inspect(empty_engine).get_table_names())
    with empty_engine.connect() as conn:
        assert [tuple(row) for row in conn.execute(query)] == before
