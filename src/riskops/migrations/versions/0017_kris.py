"""key risk indicators: kri (with its Prometheus pull state), kri_threshold (versions), kri_risk and kri_process
(what it informs), kri_value (raw, one per moment), kri_daily (rolled-up days), kri_transition (status changes);
risk.kri_status, the worst status of a risk's KRIs (null on every existing row)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _kri_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["kri_id"], ["kri.id"], name=op.f(f"fk_{table}_kri_id_kri"))


def upgrade() -> None:
    op.create_table(
        "kri",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("amber", sa.Float(), nullable=False),
        sa.Column("red", sa.Float(), nullable=False),
        sa.Column("threshold_version", sa.Integer(), nullable=False),
        sa.Column("frequency_minutes", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("escalation_policy", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("last_value_at", UTCDateTime(), nullable=True),
        sa.Column("status_since", UTCDateTime(), nullable=True),
        sa.Column("next_pull_at", UTCDateTime(), nullable=True),
        sa.Column("last_pull_at", UTCDateTime(), nullable=True),
        sa.Column("last_pull_error", sa.Text(), nullable=True),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kri")),
    )
    op.create_index("ix_kri_source_next_pull_at", "kri", ["source", "next_pull_at"])
    op.create_table(
        "kri_threshold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kri_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("amber", sa.Float(), nullable=False),
        sa.Column("red", sa.Float(), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.Column("set_at", UTCDateTime(), nullable=False),
        _kri_fk("kri_threshold"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kri_threshold")),
        sa.UniqueConstraint("kri_id", "version", name=op.f("uq_kri_threshold_kri_id_version")),
    )
    op.create_table(
        "kri_risk",
        sa.Column("kri_id", sa.Integer(), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        _kri_fk("kri_risk"),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], name=op.f("fk_kri_risk_risk_id_risk")),
        sa.PrimaryKeyConstraint("kri_id", "risk_id", name=op.f("pk_kri_risk")),
    )
    op.create_index(op.f("ix_kri_risk_risk_id"), "kri_risk", ["risk_id"])
    op.create_table(
        "kri_process",
        sa.Column("kri_id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=False),
        _kri_fk("kri_process"),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["business_process.id"],
            name=op.f("fk_kri_process_process_id_business_process"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kri_id", "process_id", name=op.f("pk_kri_process")),
    )
    op.create_index(op.f("ix_kri_process_process_id"), "kri_process", ["process_id"])
    op.create_table(
        "kri_value",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kri_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        _kri_fk("kri_value"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kri_value")),
        sa.UniqueConstraint("kri_id", "at", name=op.f("uq_kri_value_kri_id_at")),
    )
    op.create_table(
        "kri_daily",
        sa.Column("kri_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=False) for name in ("min", "max", "mean", "last")),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        _kri_fk("kri_daily"),
        sa.PrimaryKeyConstraint("kri_id", "day", name=op.f("pk_kri_daily")),
    )
    op.create_table(
        "kri_transition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kri_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=8), nullable=True),
        sa.Column("to_status", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        _kri_fk("kri_transition"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kri_transition")),
    )
    op.create_index("ix_kri_transition_recorded_at", "kri_transition", ["recorded_at", "id"])
    # Plain ALTER TABLE, not a batch: on SQLite a batch copies the table and would lose its expression indexes
    op.add_column("risk", sa.Column("kri_status", sa.String(length=8), nullable=True))


def downgrade() -> None:
    op.drop_column("risk", "kri_status")
    op.drop_index("ix_kri_transition_recorded_at", table_name="kri_transition")
    for table in ("kri_transition", "kri_daily", "kri_value"):
        op.drop_table(table)
    op.drop_index(op.f("ix_kri_process_process_id"), table_name="kri_process")
    op.drop_table("kri_process")
    op.drop_index(op.f("ix_kri_risk_risk_id"), table_name="kri_risk")
    op.drop_table("kri_risk")
    op.drop_table("kri_threshold")
    op.drop_index("ix_kri_source_next_pull_at", table_name="kri")
    op.drop_table("kri")
