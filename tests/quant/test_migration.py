"""Migration 0018 on both databases: from 0017 with a risk and a treatment action in it, the quantified loss tables
arrive empty beside them, kept as they were; their keys hold in the database itself, and the downgrade leaves the
register whole."""

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from riskops import migrations
from riskops.risks.matrices.service import DEFAULT_MATRIX, load_spec_file
from tests.treatments.test_migration import ACTION, RISK_COLUMNS

TABLES = {"loss_estimate", "loss_simulation", "loss_effect", "loss_analysis", "loss_tolerance"}
ESTIMATE = (
    "INSERT INTO loss_estimate (risk_id, currency, inputs, rationale, updated_at, updated_by, version)"
    " VALUES (:risk, 'EUR', :inputs, '', :at, 'bob', 1)"
)
EFFECT = (
    "INSERT INTO loss_effect (action_id, change, updated_at, updated_by, version) VALUES (:action, '{}', :at, 'bob', 1)"
)


def test_0018_adds_the_quantified_loss_tables_and_keeps_the_register(empty_engine: Engine) -> None:
    migrations.upgrade(empty_engine, "0017")
    at = "2026-07-01 09:00:00.000000" if empty_engine.dialect.name == "sqlite" else "2026-07-01T09:00Z"
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO risk_matrix (version, name, spec, published_at, published_by)"
                " VALUES (1, 'default', :spec, :at, 'riskops')"
            ),
            {"at": at, "spec": load_spec_file(DEFAULT_MATRIX).model_dump_json()},
        )
        conn.execute(
            text(
                f"INSERT INTO risk ({RISK_COLUMNS}) VALUES (1, 'Flood', '', 'ops', 'head of ops', 'open',"
                " 'mitigate', 1, 3, 4, 12, 'high', 12, 'high', :at, :at, :at, :at, false, 1)"
            ),
            {"at": at},
        )
        conn.execute(
            text(ACTION),
            {
                "risk": 1,
                "due": "2026-09-30",
                "amount": 100,
                "currency": "EUR",
                "control": None,
                "effect": None,
                "at": at,
            },
        )
    with empty_engine.connect() as conn:
        risks = [tuple(r) for r in conn.execute(text(f"SELECT {RISK_COLUMNS} FROM risk"))]
        actions = [tuple(r) for r in conn.execute(text("SELECT * FROM treatment_action"))]

    migrations.upgrade(empty_engine, "0018")
    assert TABLES <= set(inspect(empty_engine).get_table_names())
    inputs = '{"frequency": {"low": 1, "high": 2}, "magnitude": {"low": 1, "high": 2}}'
    with empty_engine.begin() as conn:
        assert [tuple(r) for r in conn.execute(text(f"SELECT {RISK_COLUMNS} FROM risk"))] == risks
        for table in TABLES:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
        conn.execute(text(ESTIMATE), {"risk": 1, "inputs": inputs, "at": at})
        conn.execute(text(EFFECT), {"action": 1, "at": at})
    for statement, values in (
        (ESTIMATE, {"risk": 1, "inputs": inputs}),  # one estimate per risk
        (ESTIMATE, {"risk": 2, "inputs": inputs}),  # of a risk that exists
        (EFFECT, {"action": 1}),  # one effect per action
        (EFFECT, {"action": 2}),  # of an action that exists
    ):
        with pytest.raises(IntegrityError), empty_engine.begin() as conn:
            conn.execute(text(statement), {**values, "at": at})

    migrations.downgrade(empty_engine, "0017")
    assert not TABLES & set(inspect(empty_engine).get_table_names())
    with empty_engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text(f"SELECT {RISK_COLUMNS} FROM risk"))] == risks
        assert [tuple(r) for r in conn.execute(text("SELECT * FROM treatment_action"))] == actions
    migrations.upgrade(empty_engine, "0018")
    assert TABLES <= set(inspect(empty_engine).get_table_names())
