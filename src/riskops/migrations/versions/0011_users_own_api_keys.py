"""users' own API keys: an API key may belong to a user (api_key.user_id), notes when it was last used, and
names its maker by e-mail (created_by widened to the 200 characters of a history's actor, as is
risk_matrix.published_by: a signed-in admin's e-mail publishes a matrix); keys already stored stay service keys,
untouched

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_key") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_used_at", UTCDateTime(), nullable=True))
        batch.alter_column("created_by", existing_type=sa.String(length=100), type_=sa.String(length=200))
        batch.create_foreign_key(op.f("fk_api_key_user_id_app_user"), "app_user", ["user_id"], ["id"])
        batch.create_index(op.f("ix_api_key_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("risk_matrix") as batch:
        batch.alter_column("published_by", existing_type=sa.String(length=100), type_=sa.String(length=200))


def downgrade() -> None:
    # A user's own key has no owner to check under 0010: dropped, rather than left working as a service key.
    op.execute("DELETE FROM api_key WHERE user_id IS NOT NULL")
    op.execute("UPDATE risk_matrix SET published_by = substr(published_by, 1, 100)")
    with op.batch_alter_table("risk_matrix") as batch:
        batch.alter_column("published_by", existing_type=sa.String(length=200), type_=sa.String(length=100))
    with op.batch_alter_table("api_key") as batch:
        batch.drop_index(op.f("ix_api_key_user_id"))
        batch.drop_constraint(op.f("fk_api_key_user_id_app_user"), type_="foreignkey")
        batch.alter_column("created_by", existing_type=sa.String(length=200), type_=sa.String(length=100))
        batch.drop_column("last_used_at")
        batch.drop_column("user_id")
