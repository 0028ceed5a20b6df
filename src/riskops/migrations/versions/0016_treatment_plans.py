"""treatment plans: a risk's actions (owner, due date, cost, status, the control they create or improve) in
treatment_action; no existing row changes

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "treatment_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("cost_amount", sa.Numeric(precision=15, scale=4), nullable=True),
        sa.Column("cost_currency", sa.String(length=3), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("control_id", sa.Integer(), nullable=True),
        sa.Column("control_effect", sa.String(length=16), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("cancellation_reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "cost_amount IS NULL OR cost_amount >= 0", name=op.f("ck_treatment_action_cost_not_negative")
        ),
        sa.CheckConstraint(
            "(cost_amount IS NULL) = (cost_currency IS NULL)", name=op.f("ck_treatment_action_cost_has_currency")
        ),
        sa.CheckConstraint(
            "(control_id IS NULL) = (control_effect IS NULL)", name=op.f("ck_treatment_action_control_has_effect")
        ),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], name=op.f("fk_treatment_action_risk_id_risk")),
        sa.ForeignKeyConstraint(["control_id"], ["control.id"], name=op.f("fk_treatment_action_control_id_control")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treatment_action")),
    )
    op.create_index("ix_treatment_action_risk_id_id", "treatment_action", ["risk_id", "id"])
    op.create_index("ix_treatment_action_due_date_id", "treatment_action", ["due_date", "id"])
    op.create_index("ix_treatment_action_status_due_date", "treatment_action", ["status", "due_date", "id"])
    op.create_index(
        "ix_treatment_action_owner_ci_due_date", "treatment_action", [sa.text("lower(owner)"), "due_date", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_treatment_action_owner_ci_due_date", table_name="treatment_action")
    op.drop_index("ix_treatment_action_status_due_date", table_name="treatment_action")
    op.drop_index("ix_treatment_action_due_date_id", table_name="treatment_action")
    op.drop_index("ix_treatment_action_risk_id_id", table_name="treatment_action")
    op.drop_table("treatment_action")
