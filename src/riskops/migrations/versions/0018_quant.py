"""quantified loss: risks' loss estimates and simulations, treatment actions' effects on them, loss analyses of
the register and the loss tolerance's history, each in a table of its own; no existing row changes

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "loss_estimate",
        _id(),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], name=op.f("fk_loss_estimate_risk_id_risk")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loss_estimate")),
        sa.UniqueConstraint("risk_id", name=op.f("uq_loss_estimate_risk_id")),
    )
    op.create_table(
        "loss_simulation",
        _id(),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], name=op.f("fk_loss_simulation_risk_id_risk")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loss_simulation")),
    )
    op.create_index("ix_loss_simulation_risk_id_id", "loss_simulation", ["risk_id", "id"])
    op.create_table(
        "loss_effect",
        _id(),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("change", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"], ["treatment_action.id"], name=op.f("fk_loss_effect_action_id_treatment_action")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loss_effect")),
        sa.UniqueConstraint("action_id", name=op.f("uq_loss_effect_action_id")),
    )
    op.create_table(
        "loss_analysis",
        _id(),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loss_analysis")),
    )
    op.create_table(
        "loss_tolerance",
        _id(),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("set_at", UTCDateTime(), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loss_tolerance")),
    )


def downgrade() -> None:
    op.drop_table("loss_tolerance")
    op.drop_table("loss_analysis")
    op.drop_table("loss_effect")
    op.drop_index("ix_loss_simulation_risk_id_id", table_name="loss_simulation")
    op.drop_table("loss_simulation")
    op.drop_table("loss_estimate")
