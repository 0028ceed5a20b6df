"""Migration 0016 on both databases: from 0011 with a register in it, the plans' table arrives empty beside every
risk kept as it was, its constraints hold in the database itself, and the downgrade leaves the risks whole."""

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from riskops import migrations
from riskops.risks.matrices.service import DEFAULT_MATRIX, load_spec_file

RISK_COLUMNS = (
    "id, title, description, category, owner, status, treatment, matrix_version, inherent_likelihood,"
    " inherent_impact, inherent_score, inherent_level, score, level, created_at, updated_at, last_reviewed_at,"
    " next_review_at, next_review_set_by_hand, version"
)
ACTION = (
    "INSERT INTO treatment_action (risk_id, title, description, owner, due_date, cost_amount, cost_currency, status,"
    " control_id, control_effect, created_at, created_by, updated_at, version)"
    " VALUES (:risk, 'Barriers', '', 'facilities', :due, :amount, :currency, 'planned', :control, :effect, :at,"
    " 'bob', :at, 1)"
)


def test_0016_adds_treatment_plans_and_keeps_every_risk(empty_engine: Engine) -> None:
    migrations.upgrade(empty_engine, "0011")
    at = "2026-07-01 09:00:00.000000" if empty_engine.dialect.name == "sqlite" else "2026-07-01T09:00Z"
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO risk_matrix (version, name, spec, published_at, published_by)"
                " VALUES (1, 'default', :spec, :at, 'riskops')"
            ),
            {"at": at, "spec": load_spec_file(DEFAULT_MATRIX).model_dump_json()},
        )
        for risk_id, title, status in ((1, "Flood", "open"), (2, "Old site", "closed")):
            conn.execute(
                text(
                    f"INSERT INTO risk ({RISK_COLUMNS}) VALUES (:id, :title, '', 'ops', 'head of ops', :status,"
                    " 'mitigate', 1, 3, 4, 12, 'high', 12, 'high', :at, :at, :at, :at, false, 1)"
                ),
                {"id": risk_id, "title": title, "status": status, "at": at},
            )
    with empty_engine.connect() as conn:
        before = [tuple(r) for r in conn.execute(text(f"SELECT {RISK_COLUMNS} FROM risk ORDER BY id"))]

    migrations.upgrade(empty_engine, "0016")
    with empty_engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text(f"SELECT {RISK_COLUMNS} FROM risk ORDER BY id"))] == before
        assert conn.execute(text("SELECT count(*) FROM treatment_action")).scalar_one() == 0
    action = {"risk": 1, "due": "2026-09-30", "amount": 12500, "currency": "EUR", "control": None, "effect": None}
    with empty_engine.begin() as conn:
        conn.execute(text(ACTION), {**action, "at": at})
    for wrong in (
        {"amount": -1},  # a cost is never negative
        {"currency": None},  # an amount has its currency
        {"control": 4},  # a control has its effect
        {"risk": 3},  # an action belongs to a risk
    ):
        with pytest.raises(IntegrityError), empty_engine.begin() as conn:
            conn.execute(text(ACTION), {**action, **wrong, "at": at})
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM treatment_action")).scalar_one() == 1

    migrations.downgrade(empty_engine, "0011")
    with empty_engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text(f"SELECT {RISK_COLUMNS} FROM risk ORDER BY id"))] == before
    assert "treatment_action" not in set(inspect(empty_engine).get_table_names())
    migrations.upgrade(empty_engine, "0016")
    assert "treatment_action" in set(inspect(empty_engine).get_table_names())
