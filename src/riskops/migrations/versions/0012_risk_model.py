"""the richer risk model, part one: the risk statement (type threat/opportunity, cause, event, consequence,
source, objectives), impacts per dimension on ratings and assessments, a target rating with its date; appetite
and tolerance per category (category_appetite), and each risk's standing against them (risk.outside_appetite,
risk.beyond_tolerance, risk.target_within_appetite), placed for the risks already stored against the appetite
of the matrix version they are scored on (no category has its own yet, so no tolerance, and no target yet)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime
from riskops.risks.matrices.models import MatrixSpec

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _risk_columns() -> list[sa.Column[Any]]:  # fresh columns each call: a Column joins one table
    return [
        sa.Column("type", sa.String(length=16), nullable=False, server_default="threat"),
        *(sa.Column(name, sa.Text(), nullable=False, server_default="") for name in ("cause", "event", "consequence")),
        sa.Column("source", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("objectives", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("inherent_impacts", sa.JSON(), nullable=True),
        sa.Column("residual_impacts", sa.JSON(), nullable=True),
        sa.Column("target_likelihood", sa.Integer(), nullable=True),
        sa.Column("target_impact", sa.Integer(), nullable=True),
        sa.Column("target_score", sa.Integer(), nullable=True),
        sa.Column("target_level", sa.String(length=40), nullable=True),
        sa.Column("target_date", sa.Date(), nullable=True),
        *(
            sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
            for name in ("outside_appetite", "beyond_tolerance", "target_within_appetite")
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "category_appetite",
        sa.Column("category_key", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("appetite", sa.String(length=40), nullable=False),
        sa.Column("tolerance", sa.String(length=40), nullable=True),
        sa.Column("rationale", sa.String(length=2000), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.Column("set_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("category_key", name=op.f("pk_category_appetite")),
    )
    # Plain ALTER TABLE, not a batch: on SQLite a batch copies the table and would lose its expression indexes
    # and the text-search triggers of 0008. The server default stays, so it is the model's too.
    for column in _risk_columns():
        op.add_column("risk", column)
    for which in ("inherent", "residual"):
        op.add_column("risk_assessment", sa.Column(f"{which}_impacts", sa.JSON(), nullable=True))
    connection = op.get_bind()
    risk = sa.table("risk", sa.column("matrix_version", sa.Integer), sa.column("level", sa.String),
                    sa.column("outside_appetite", sa.Boolean))  # fmt: skip
    for version, spec in connection.execute(sa.text("SELECT version, spec FROM risk_matrix")):
        parsed = MatrixSpec.model_validate_json(spec) if isinstance(spec, str) else MatrixSpec.model_validate(spec)
        above = [level.name for level in parsed.levels if parsed.above_appetite(level.name)]
        if above:
            connection.execute(
                risk.update()
                .where(risk.c.matrix_version == version, risk.c.level.in_(above))
                .values(outside_appetite=True)
            )


def downgrade() -> None:
    for which in ("residual", "inherent"):
        op.drop_column("risk_assessment", f"{which}_impacts")
    for column in reversed(_risk_columns()):
        op.drop_column("risk", column.name)
    op.drop_table("category_appetite")
