"""playbooks and incidents

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotent_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotent_request")),
        sa.UniqueConstraint("principal_id", "key", name=op.f("uq_idempotent_request_principal_id_key")),
    )
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("is_exercise", sa.Boolean(), nullable=False),
        sa.Column("playbook_slug", sa.String(length=64), nullable=True),
        sa.Column("playbook_version", sa.Integer(), nullable=True),
        sa.Column("rto_minutes", sa.Integer(), nullable=True),
        sa.Column("declared_at", UTCDateTime(), nullable=False),
        sa.Column("declared_by", sa.String(length=200), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("mitigated_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("breach_at", UTCDateTime(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("objectives_met", sa.Boolean(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident")),
    )
    op.create_index(op.f("ix_incident_playbook_slug"), "incident", ["playbook_slug"], unique=False)
    op.create_index("ix_incident_state_declared", "incident", ["is_exercise", "state", "declared_at"], unique=False)

    op.create_table(
        "playbook_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.Column("retired_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playbook_version")),
        sa.UniqueConstraint("slug", "version", name=op.f("uq_playbook_version_slug_version")),
    )
    op.create_index(op.f("ix_playbook_version_slug"), "playbook_version", ["slug"], unique=False)

    op.create_table(
        "incident_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("sent_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incident.id"], name=op.f("fk_incident_message_incident_id_incident")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_message")),
        sa.UniqueConstraint("incident_id", "key", name=op.f("uq_incident_message_incident_id_key")),
    )
    op.create_index(op.f("ix_incident_message_incident_id"), "incident_message", ["incident_id"], unique=False)

    op.create_table(
        "incident_role",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("assigned_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"], name=op.f("fk_incident_role_incident_id_incident")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_role")),
        sa.UniqueConstraint("incident_id", "key", name=op.f("uq_incident_role_incident_id_key")),
    )
    op.create_index(op.f("ix_incident_role_incident_id"), "incident_role", ["incident_id"], unique=False)

    op.create_table(
        "incident_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("depends_on", sa.JSON(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("finished_by", sa.String(length=200), nullable=True),
        sa.Column("skip_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"], name=op.f("fk_incident_step_incident_id_incident")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_step")),
        sa.UniqueConstraint("incident_id", "key", name=op.f("uq_incident_step_incident_id_key")),
    )
    op.create_index("ix_incident_step_due", "incident_step", ["status", "due_at"], unique=False)
    op.create_index(op.f("ix_incident_step_incident_id"), "incident_step", ["incident_id"], unique=False)

    op.create_table(
        "incident_timeline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incident.id"], name=op.f("fk_incident_timeline_incident_id_incident")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_timeline")),
    )
    op.create_index("ix_incident_timeline_incident_id_id", "incident_timeline", ["incident_id", "id"], unique=False)

    op.create_table(
        "incident_risk",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"], name=op.f("fk_incident_risk_incident_id_incident")),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], name=op.f("fk_incident_risk_risk_id_risk")),
        sa.PrimaryKeyConstraint("incident_id", "risk_id", name=op.f("pk_incident_risk")),
    )
    op.create_index(op.f("ix_incident_risk_risk_id"), "incident_risk", ["risk_id"], unique=False)

    with op.batch_alter_table("risk") as batch_op:
        batch_op.add_column(sa.Column("materialised_at", UTCDateTime(), nullable=True))

    _forbid_changes("incident_timeline")


def downgrade() -> None:
    _allow_changes("incident_timeline")
    with op.batch_alter_table("risk") as batch_op:
        batch_op.drop_column("materialised_at")

    op.drop_index(op.f("ix_incident_risk_risk_id"), table_name="incident_risk")

    op.drop_table("incident_risk")
    op.drop_index("ix_incident_timeline_incident_id_id", table_name="incident_timeline")

    op.drop_table("incident_timeline")
    op.drop_index(op.f("ix_incident_step_incident_id"), table_name="incident_step")
    op.drop_index("ix_incident_step_due", table_name="incident_step")

    op.drop_table("incident_step")
    op.drop_index(op.f("ix_incident_role_incident_id"), table_name="incident_role")

    op.drop_table("incident_role")
    op.drop_index(op.f("ix_incident_message_incident_id"), table_name="incident_message")

    op.drop_table("incident_message")
    op.drop_index(op.f("ix_playbook_version_slug"), table_name="playbook_version")

    op.drop_table("playbook_version")
    op.drop_index("ix_incident_state_declared", table_name="incident")
    op.drop_index(op.f("ix_incident_playbook_slug"), table_name="incident")

    op.drop_table("incident")
    op.drop_table("idempotent_request")


def _forbid_changes(table: str) -> None:
    """The timeline is append-only, like the audit trail (see 0001)."""
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
