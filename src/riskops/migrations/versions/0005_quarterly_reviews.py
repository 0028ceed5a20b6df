"""quarterly reviews

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.String(length=8), nullable=True),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("taken_at", UTCDateTime(), nullable=False),
        sa.Column("taken_by", sa.String(length=200), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshot")),
    )
    op.create_index(op.f("ix_snapshot_cycle_id"), "snapshot", ["cycle_id"], unique=False)

    op.create_table(
        "review_cycle",
        sa.Column("id", sa.String(length=8), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("opened_by", sa.String(length=200), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("snapshot_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["snapshot_id"], ["snapshot.id"], name=op.f("fk_review_cycle_snapshot_id_snapshot")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_cycle")),
    )
    op.create_table(
        "risk_review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.String(length=8), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("reviewed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cycle_id"], ["review_cycle.id"], name=op.f("fk_risk_review_cycle_id_review_cycle")),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], name=op.f("fk_risk_review_risk_id_risk")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_review")),
        sa.UniqueConstraint("cycle_id", "risk_id", name=op.f("uq_risk_review_cycle_id_risk_id")),
    )
    op.create_index(op.f("ix_risk_review_cycle_id"), "risk_review", ["cycle_id"], unique=False)

    _forbid_changes("snapshot")


def downgrade() -> None:
    _allow_changes("snapshot")
    op.drop_index(op.f("ix_risk_review_cycle_id"), table_name="risk_review")

    op.drop_table("risk_review")
    op.drop_table("review_cycle")
    op.drop_index(op.f("ix_snapshot_cycle_id"), table_name="snapshot")

    op.drop_table("snapshot")


def _forbid_changes(table: str) -> None:
    """A snapshot never changes after it is taken, like the history tables (see 0001)."""
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
