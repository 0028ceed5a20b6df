"""inbound integrations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.Column("signing_secret", sa.String(length=200), nullable=True),
        sa.Column("routes", sa.JSON(), nullable=False),
        sa.Column("default_route", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_integration_token_hash")),
    )
    op.create_table(
        "alert_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"], name=op.f("fk_alert_group_incident_id_incident")),
        sa.ForeignKeyConstraint(
            ["integration_id"], ["integration.id"], name=op.f("fk_alert_group_integration_id_integration")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_group")),
    )
    op.create_index(op.f("ix_alert_group_incident_id"), "alert_group", ["incident_id"], unique=False)
    op.create_index(
        "uq_alert_group_open",
        "alert_group",
        ["integration_id", "key"],
        unique=True,
        sqlite_where=sa.text("closed_at IS NULL"),
        postgresql_where=sa.text("closed_at IS NULL"),
    )

    op.create_table(
        "alert_instance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.String(length=300), nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"], ["integration.id"], name=op.f("fk_alert_instance_integration_id_integration")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_instance")),
        sa.UniqueConstraint(
            "integration_id",
            "fingerprint",
            "starts_at",
            name=op.f("uq_alert_instance_integration_id_fingerprint_starts_at"),
        ),
    )
    op.create_index(op.f("ix_alert_instance_group_key"), "alert_instance", ["group_key"], unique=False)

    op.create_table(
        "received_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("dedup_key", sa.String(length=300), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"], name=op.f("fk_received_alert_incident_id_incident")),
        sa.ForeignKeyConstraint(
            ["integration_id"], ["integration.id"], name=op.f("fk_received_alert_integration_id_integration")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_received_alert")),
    )
    op.create_index(op.f("ix_received_alert_integration_id"), "received_alert", ["integration_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_received_alert_integration_id"), table_name="received_alert")

    op.drop_table("received_alert")
    op.drop_index(op.f("ix_alert_instance_group_key"), table_name="alert_instance")

    op.drop_table("alert_instance")
    op.drop_index("uq_alert_group_open", table_name="alert_group")
    op.drop_index(op.f("ix_alert_group_incident_id"), table_name="alert_group")

    op.drop_table("alert_group")
    op.drop_table("integration")
