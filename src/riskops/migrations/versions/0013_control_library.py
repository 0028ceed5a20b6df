"""control library: controls defined once (control) and applied to risks (risk_control.control_id), with their
tests (control_test, append-only); every control stored under 0011 becomes a library control of its own, with
the same id, title and owner, and is applied where it was

Revision ID: 0013
Revises: 0012
Create Date: 2027-01-11
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AUDIT = sa.table(
    "audit_entry",
    sa.column("entity_type", sa.String),
    sa.column("entity_id", sa.String),
    sa.column("action", sa.String),
    sa.column("actor", sa.String),
    sa.column("at", UTCDateTime),
    sa.column("changes", sa.JSON),
    sa.column("note", sa.Text),
)


def upgrade() -> None:
    op.create_table(
        "control",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("nature", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("framework_references", sa.JSON(), nullable=False),
        sa.Column("test_interval_days", sa.Integer(), nullable=True),
        sa.Column("next_test_due", sa.Date(), nullable=True),
        sa.Column("last_tested_on", sa.Date(), nullable=True),
        sa.Column("effectiveness", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control")),
        sqlite_autoincrement=True,  # a deleted control's id is never given to another
    )
    op.create_index("ix_control_effectiveness_id", "control", ["effectiveness", "id"])
    op.create_index("ix_control_next_test_due", "control", ["next_test_due"])
    op.create_table(
        "control_test",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("control_id", sa.Integer(), nullable=False),
        sa.Column("tested_on", sa.Date(), nullable=False),
        sa.Column("tester", sa.String(length=200), nullable=False),
        sa.Column("result", sa.String(length=24), nullable=False),
        sa.Column("evidence_url", sa.String(length=2000), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["control_id"], ["control.id"], name=op.f("fk_control_test_control_id_control")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_test")),
    )
    op.create_index("ix_control_test_control_id_tested_on", "control_test", ["control_id", "tested_on", "id"])
    _forbid_changes("control_test")

    # One library control per control stored so far, under the same id: each application names its own.
    op.execute(
        "INSERT INTO control (id, title, description, type, nature, owner, framework_references, effectiveness,"
        " status, version, created_at, updated_at)"
        " SELECT id, title, '', 'preventive', 'manual', owner, '[]', 'untested', 'active', 1, created_at, updated_at"
        " FROM risk_control"
    )
    if op.get_context().dialect.name == "postgresql":  # ids were given: the sequence goes on after them
        op.execute(
            "SELECT setval(pg_get_serial_sequence('control', 'id'), coalesce(max(id), 0) + 1, false) FROM control"
        )
    _record_creations()
    with op.batch_alter_table("risk_control") as batch:
        batch.add_column(sa.Column("control_id", sa.Integer(), nullable=True))
    op.execute("UPDATE risk_control SET control_id = id")
    with op.batch_alter_table("risk_control") as batch:
        batch.alter_column("control_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(op.f("fk_risk_control_control_id_control"), "control", ["control_id"], ["id"])
        batch.create_unique_constraint(op.f("uq_risk_control_risk_id_control_id"), ["risk_id", "control_id"])
        batch.create_index(op.f("ix_risk_control_control_id"), ["control_id"], unique=False)
        batch.drop_index(op.f("ix_risk_control_risk_id"))  # the unique key starts with risk_id
        batch.drop_column("title")
        batch.drop_column("owner")


def _record_creations() -> None:
    """Each library control's history starts with its creation, from the risk's control it was."""
    rows = op.get_bind().execute(sa.text("SELECT id, risk_id, title, owner FROM risk_control ORDER BY id")).all()
    at = datetime.now(UTC)
    created = [
        {
            "entity_type": "control", "entity_id": str(row.id), "action": "created", "actor": "system", "at": at,
            "changes": {
                name: {"old": None, "new": value}
                for name, value in (
                    ("title", row.title), ("description", ""), ("type", "preventive"), ("nature", "manual"),
                    ("owner", row.owner), ("framework_references", []), ("effectiveness", "untested"),
                    ("status", "active"),
                )
            },
            "note": f"From the control on R-{row.risk_id:04d}, as the library began (migration 0013)",
        }
        for row in rows
    ]  # fmt: skip
    if created:
        op.bulk_insert(_AUDIT, created)


def downgrade() -> None:
    # Each application gets its control's title and owner back; controls applied nowhere, and the tests, go.
    with op.batch_alter_table("risk_control") as batch:
        batch.add_column(sa.Column("title", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(length=200), nullable=True))
    for name in ("title", "owner"):
        op.execute(f"UPDATE risk_control SET {name} = (SELECT {name} FROM control WHERE control.id = control_id)")
    with op.batch_alter_table("risk_control") as batch:
        batch.alter_column("title", existing_type=sa.String(length=200), nullable=False)
        batch.alter_column("owner", existing_type=sa.String(length=200), nullable=False)
        batch.create_index(op.f("ix_risk_control_risk_id"), ["risk_id"], unique=False)
        batch.drop_index(op.f("ix_risk_control_control_id"))
        batch.drop_constraint(op.f("uq_risk_control_risk_id_control_id"), type_="unique")
        batch.drop_constraint(op.f("fk_risk_control_control_id_control"), type_="foreignkey")
        batch.drop_column("control_id")
    _allow_changes("control_test")
    op.drop_index("ix_control_test_control_id_tested_on", table_name="control_test")
    op.drop_table("control_test")
    op.drop_index("ix_control_next_test_due", table_name="control")
    op.drop_index("ix_control_effectiveness_id", table_name="control")
    op.drop_table("control")


def _forbid_changes(table: str) -> None:
    """A test once recorded is evidence: it never changes, like the history tables (see 0001)."""
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION riskops_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _allow_changes(table: str) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event}")
