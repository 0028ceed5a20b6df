"""obligations kept: detection time, MTPD, who acknowledged, optional plan items, review requests,
case-insensitive owner and category indexes, alert groups by key

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incident") as batch:
        batch.add_column(sa.Column("detected_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(length=200), nullable=True))
        batch.add_column(
            sa.Column("acknowledged_automatically", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("mtpd_minutes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("mtpd_at", UTCDateTime(), nullable=True))
    # Incidents declared before this revision were detected when they were declared, as far as anyone recorded.
    op.execute("UPDATE incident SET detected_at = declared_at")
    with op.batch_alter_table("incident") as batch:
        batch.alter_column("detected_at", existing_type=UTCDateTime(), nullable=False)
        batch.alter_column("acknowledged_automatically", server_default=None)

    for table in ("incident_step", "incident_message"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("required", sa.Boolean(), nullable=False, server_default=sa.true()))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("required", server_default=None)

    op.create_table(
        "review_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.String(length=8), nullable=False),
        sa.Column("owner_key", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("reminded_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["cycle_id"], ["review_cycle.id"], name=op.f("fk_review_request_cycle_id_review_cycle")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_request")),
        sa.UniqueConstraint("cycle_id", "owner_key", name=op.f("uq_review_request_cycle_id_owner_key")),
    )

    op.drop_index("ix_risk_category_score", table_name="risk")
    op.drop_index("ix_risk_owner_score", table_name="risk")
    op.create_index("ix_risk_category_ci_score", "risk", [sa.text("lower(category)"), "score", "id"])
    op.create_index("ix_risk_owner_ci_score", "risk", [sa.text("lower(owner)"), "score", "id"])

    op.create_index("ix_alert_group_key_id", "alert_group", ["integration_id", "key", "id"])


def downgrade() -> None:
    op.drop_index("ix_alert_group_key_id", table_name="alert_group")
    op.drop_index("ix_risk_owner_ci_score", table_name="risk")
    op.drop_index("ix_risk_category_ci_score", table_name="risk")
    op.create_index("ix_risk_owner_score", "risk", ["owner", "score", "id"])
    op.create_index("ix_risk_category_score", "risk", ["category", "score", "id"])
    op.drop_table("review_request")
    for table in ("incident_message", "incident_step"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("required")
    with op.batch_alter_table("incident") as batch:
        for column in ("mtpd_at", "mtpd_minutes", "acknowledged_automatically", "acknowledged_by", "detected_at"):
            batch.drop_column(column)
