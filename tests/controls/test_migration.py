"""Migration 0013 on both databases: every control stored under 0011 becomes a library control, still applied to its
risk with its status and due date; new controls number on after them; down again, nothing is lost."""

import json

from sqlalchemy import Engine, inspect, text
from sqlmodel import Session

from riskops import migrations
from riskops.controls import service as controls
from riskops.controls.models import LibraryControlCreate
from riskops.risks import applied_controls, reads
from riskops.risks import service as risks
from riskops.risks.library import ControlCreate
from riskops.risks.matrices import service as matrices
from tests.conftest import SETTINGS, WRITER

# (risk, title, owner, status, due date): two risks, one of them with two controls; "Pumps" on both, as two rows.
CONTROLS = [
    (1, "Flood barriers", "facilities", "implemented", "2027-03-31"),
    (1, "Pumps", "facilities", "planned", None),
    (2, "Pumps", "site manager", "in-progress", None),
]


def _write_under_0011(engine: Engine) -> None:
    migrations.upgrade(engine, "0011")
    with Session(engine) as session:
        matrices.ensure_default(session)
        session.commit()
    at = "2026-07-01 09:00:00.000000" if engine.dialect.name == "sqlite" else "2026-07-01T09:00Z"
    with engine.begin() as conn:
        for risk_id in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO risk (id, title, description, category, owner, status, treatment, matrix_version,"
                    " inherent_likelihood, inherent_impact, inherent_score, inherent_level, score, level, created_at,"
                    " updated_at, last_reviewed_at, next_review_at, next_review_set_by_hand, version)"
                    " VALUES (:id, :title, '', 'operational', 'ops', 'open', 'mitigate', 1, 3, 4, 12, 'high', 12,"
                    " 'high', :at, :at, :at, :at, false, 3)"
                ),
                {"id": risk_id, "title": f"Flood {risk_id}", "at": at},
            )
        for risk_id, title, owner, status, due in CONTROLS:
            conn.execute(
                text(
                    "INSERT INTO risk_control (risk_id, title, owner, status, due_date, created_at, updated_at)"
                    " VALUES (:risk, :title, :owner, :status, :due, :at, :at)"
                ),
                {"risk": risk_id, "title": title, "owner": owner, "status": status, "due": due, "at": at},
            )
        if engine.dialect.name == "postgresql":  # ids were given above: the sequence goes on after them
            conn.execute(text("SELECT setval(pg_get_serial_sequence('risk', 'id'), 2)"))


def test_every_control_becomes_a_library_control_still_applied(empty_engine: Engine) -> None:
    _write_under_0011(empty_engine)
    migrations.upgrade(empty_engine)

    with empty_engine.connect() as conn:
        library = conn.execute(
            text(
                "SELECT id, title, owner, description, type, nature, effectiveness, status, version"
                " FROM control ORDER BY id"
            )
        ).all()
        applied = conn.execute(text("SELECT id, risk_id, control_id, status FROM risk_control ORDER BY id")).all()
        created = conn.execute(
            text("SELECT entity_id, action, note FROM audit_entry WHERE entity_type = 'control' ORDER BY id")
        ).all()
    assert [tuple(row) for row in library] == [
        (n, title, owner, "", "preventive", "manual", "untested", "active", 1)
        for n, (_, title, owner, _, _) in enumerate(CONTROLS, start=1)
    ]
    assert [tuple(row) for row in applied] == [(n, c[0], n, c[3]) for n, c in enumerate(CONTROLS, start=1)]
    assert {"title", "owner"}.isdisjoint(c["name"] for c in inspect(empty_engine).get_columns("risk_control"))
    assert [(row.entity_id, row.action) for row in created] == [("1", "created"), ("2", "created"), ("3", "created")]
    assert "R-0001" in created[0].note and "R-0002" in created[2].note

    with Session(empty_engine) as session:
        shown = json.loads(reads.read_risk(session, 1).body)["controls"]
        assert [(c["control_reference"], c["title"], c["owner"], c["status"], c["due_date"]) for c in shown] == [
            ("C-0001", "Flood barriers", "facilities", "implemented", "2027-03-31"),
            ("C-0002", "Pumps", "facilities", "planned", None),
        ]
        assert shown[0]["type"] == "preventive" and shown[0]["effectiveness"] == "untested"
        # The library numbers on after the migrated controls, and one of them can be applied to another risk.
        made = controls.create_control(session, LibraryControlCreate(title="Sandbags", owner="facilities"), WRITER)
        assert made.id == 4
        second = risks.get_risk(session, 2, for_update=True)
        assert (
            applied_controls.add_control(session, second, ControlCreate(control_id=1), WRITER, SETTINGS).control_id == 1
        )
        session.commit()

    migrations.downgrade(empty_engine, "0011")
    with empty_engine.connect() as conn:
        back = conn.execute(text("SELECT risk_id, title, owner, status FROM risk_control ORDER BY id")).all()
    assert [tuple(row) for row in back] == [(c[0], c[1], c[2], c[3]) for c in CONTROLS] + [
        (2, "Flood barriers", "facilities", "planned")
    ]
