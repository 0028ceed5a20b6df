"""risk register

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_key_key_hash")),
    )
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
    )
    op.create_index("ix_audit_entry_entity", "audit_entry", ["entity_type", "entity_id", "id"], unique=False)

    op.create_table(
        "risk_matrix",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("published_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_risk_matrix")),
    )
    op.create_table(
        "risk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("treatment", sa.String(length=16), nullable=False),
        sa.Column("matrix_version", sa.Integer(), nullable=False),
        sa.Column("inherent_likelihood", sa.Integer(), nullable=False),
        sa.Column("inherent_impact", sa.Integer(), nullable=False),
        sa.Column("inherent_score", sa.Integer(), nullable=False),
        sa.Column("inherent_level", sa.String(length=40), nullable=False),
        sa.Column("residual_likelihood", sa.Integer(), nullable=True),
        sa.Column("residual_impact", sa.Integer(), nullable=True),
        sa.Column("residual_score", sa.Integer(), nullable=True),
        sa.Column("residual_level", sa.String(length=40), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=40), nullable=False),
        sa.Column("acceptance_approver", sa.String(length=200), nullable=True),
        sa.Column("acceptance_expires_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_reviewed_at", UTCDateTime(), nullable=False),
        sa.Column("next_review_at", UTCDateTime(), nullable=False),
        sa.Column("next_review_set_by_hand", sa.Boolean(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closure_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["matrix_version"], ["risk_matrix.version"], name=op.f("fk_risk_matrix_version_risk_matrix")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk")),
    )
    op.create_index("ix_risk_category_score", "risk", ["category", "score", "id"], unique=False)
    op.create_index("ix_risk_next_review_at_id", "risk", ["next_review_at", "id"], unique=False)
    op.create_index("ix_risk_owner_score", "risk", ["owner", "score", "id"], unique=False)
    op.create_index("ix_risk_score_id", "risk", ["score", "id"], unique=False)
    op.create_index("ix_risk_status_level_score", "risk", ["status", "level", "score", "id"], unique=False)
    op.create_index("ix_risk_updated_at_id", "risk", ["updated_at", "id"], unique=False)

    op.create_table(
        "risk_assessment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("matrix_version", sa.Integer(), nullable=False),
        sa.Column("inherent_likelihood", sa.Integer(), nullable=False),
        sa.Column("inherent_impact", sa.Integer(), nullable=False),
        sa.Column("inherent_score", sa.Integer(), nullable=False),
        sa.Column("inherent_level", sa.String(length=40), nullable=False),
        sa.Column("residual_likelihood", sa.Integer(), nullable=True),
        sa.Column("residual_impact", sa.Integer(), nullable=True),
        sa.Column("residual_score", sa.Integer(), nullable=True),
        sa.Column("residual_level", sa.String(length=40), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("assessed_by", sa.String(length=200), nullable=False),
        sa.Column("assessed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["matrix_version"], ["risk_matrix.version"], name=op.f("fk_risk_assessment_matrix_version_risk_matrix")
        ),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], name=op.f("fk_risk_assessment_risk_id_risk")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_assessment")),
    )
    op.create_index("ix_risk_assessment_risk_id_id", "risk_assessment", ["risk_id", "id"], unique=False)

    op.create_table(
        "risk_control",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], name=op.f("fk_risk_control_risk_id_risk")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_control")),
    )
    op.create_index(op.f("ix_risk_control_risk_id"), "risk_control", ["risk_id"], unique=False)

    op.create_table(
        "risk_tag",
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], name=op.f("fk_risk_tag_risk_id_risk")),
        sa.PrimaryKeyConstraint("risk_id", "tag", name=op.f("pk_risk_tag")),
    )
    op.create_index(op.f("ix_risk_tag_tag"), "risk_tag", ["tag"], unique=False)

    for table in APPEND_ONLY:
        _forbid_changes(table)


def downgrade() -> None:
    for table in APPEND_ONLY:
        _allow_changes(table)
    op.drop_index(op.f("ix_risk_tag_tag"), table_name="risk_tag")

    op.drop_table("risk_tag")
    op.drop_index(op.f("ix_risk_control_risk_id"), table_name="risk_control")

    op.drop_table("risk_control")
    op.drop_index("ix_risk_assessment_risk_id_id", table_name="risk_assessment")

    op.drop_table("risk_assessment")
    op.drop_index("ix_risk_updated_at_id", table_name="risk")
    op.drop_index("ix_risk_status_level_score", table_name="risk")
    op.drop_index("ix_risk_score_id", table_name="risk")
    op.drop_index("ix_risk_owner_score", table_name="risk")
    op.drop_index("ix_risk_next_review_at_id", table_name="risk")
    op.drop_index("ix_risk_category_score", table_name="risk")

    op.drop_table("risk")
    op.drop_table("risk_matrix")
    op.drop_index("ix_audit_entry_entity", table_name="audit_entry")

    op.drop_table("audit_entry")
    op.drop_table("api_key")


# History tables: the database itself refuses to rewrite or erase them.
APPEND_ONLY = ("audit_entry", "risk_assessment")


def _forbid_changes(table: str) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION riskops_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
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
        op.execute("DROP FUNCTION IF EXISTS riskops_append_only() CASCADE")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{event}")
