"""processes and assets: business processes with their business impact analysis, assets in a hierarchy, what each
process depends on, and the risks linked to processes and assets; new tables only, no existing row changes

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _link_table(name: str, left: tuple[str, str], right: tuple[str, str], *extra: sa.Column[object]) -> None:
    """A table of pairs, each side a foreign key, the second also indexed (links are read from both ends)."""
    (left_column, left_table), (right_column, right_table) = left, right
    op.create_table(
        name,
        sa.Column(left_column, sa.Integer(), nullable=False),
        sa.Column(right_column, sa.Integer(), nullable=False),
        *extra,
        sa.ForeignKeyConstraint(
            [left_column], [f"{left_table}.id"], name=op.f(f"fk_{name}_{left_column}_{left_table}")
        ),
        sa.ForeignKeyConstraint(
            [right_column], [f"{right_table}.id"], name=op.f(f"fk_{name}_{right_column}_{right_table}")
        ),
        sa.PrimaryKeyConstraint(left_column, right_column, name=op.f(f"pk_{name}")),
    )
    op.create_index(op.f(f"ix_{name}_{right_column}"), name, [right_column], unique=False)


def upgrade() -> None:
    op.create_table(
        "business_process",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("criticality", sa.String(length=16), nullable=False),
        sa.Column("rto_minutes", sa.Integer(), nullable=True),
        sa.Column("rpo_minutes", sa.Integer(), nullable=True),
        sa.Column("mtpd_minutes", sa.Integer(), nullable=True),
        sa.Column("minimum_service_level", sa.Text(), nullable=True),
        sa.Column("impact_over_time", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("archived_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_process")),
        sa.UniqueConstraint("key", name=op.f("uq_business_process_key")),
    )
    op.create_table(
        "asset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("archived_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["asset.id"], name=op.f("fk_asset_parent_id_asset")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset")),
        sa.UniqueConstraint("key", name=op.f("uq_asset_key")),
    )
    op.create_index(op.f("ix_asset_parent_id"), "asset", ["parent_id"], unique=False)
    _link_table("process_dependency", ("process_id", "business_process"), ("depends_on_id", "business_process"))
    _link_table("process_asset", ("process_id", "business_process"), ("asset_id", "asset"))
    for name, (column, table) in (
        ("risk_process", ("process_id", "business_process")),
        ("risk_asset", ("asset_id", "asset")),
    ):
        _link_table(
            name, ("risk_id", "risk"), (column, table),
            sa.Column("linked_at", UTCDateTime(), nullable=False),
            sa.Column("linked_by", sa.String(length=200), nullable=False),
        )  # fmt: skip


def downgrade() -> None:
    for name, column in (
        ("risk_asset", "asset_id"), ("risk_process", "process_id"), ("process_asset", "asset_id"),
        ("process_dependency", "depends_on_id"),
    ):  # fmt: skip
        op.drop_index(op.f(f"ix_{name}_{column}"), table_name=name)
        op.drop_table(name)
    op.drop_index(op.f("ix_asset_parent_id"), table_name="asset")
    op.drop_table("asset")
    op.drop_table("business_process")
