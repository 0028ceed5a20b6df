"""obligations kept: detection time, MTPD, who acknowledged, optional plan items, review requests,
case-insensitive owner and category indexes, alert groups by key

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence
from datetime import timedelta

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
    _backfill_obligations()


# Written out here (not imported from the app) so that this revision does the same thing forever.
_REMINDER = timedelta(minutes=10)  # RISKOPS_STEP_REMINDER_MINUTES' default
_incident = sa.table(
    "incident", sa.column("id", sa.Integer), sa.column("state", sa.String), sa.column("declared_at", UTCDateTime()),
    sa.column("playbook_slug", sa.String), sa.column("playbook_version", sa.Integer),
    sa.column("mtpd_minutes", sa.Integer), sa.column("mtpd_at", UTCDateTime()),
)  # fmt: skip
_playbook = sa.table(
    "playbook_version", sa.column("slug", sa.String), sa.column("version", sa.Integer), sa.column("spec", sa.JSON)
)
_notice = sa.table(
    "notice", sa.column("kind", sa.String), sa.column("subject_type", sa.String), sa.column("subject_id", sa.Integer),
    sa.column("ref", sa.String), sa.column("due_at", UTCDateTime()), sa.column("data", sa.JSON),
    sa.column("fired_at", UTCDateTime()),
)  # fmt: skip
# Per plan table: the notice subject, its reminder and overdue kinds, and the statuses in which it is still owed.
_OBLIGATIONS = {
    "incident_step": ("step", "step.due", "step.overdue", ("pending", "in-progress")),
    "incident_message": ("message", "communication.due", "communication.overdue", ("pending",)),
}


def _backfill_obligations() -> None:
    """Incidents already running keep what this revision promises: the MTPD of their playbook is recorded, and
    every step and communication still owed (also of a resolved incident, whose reminders the old code dropped)
    gets its reminder and overdue notices, unless it has them already."""
    conn = op.get_bind()
    incidents = conn.execute(sa.select(_incident).where(_incident.c.state != "closed")).all()
    specs = {(r.slug, r.version): r.spec for r in conn.execute(sa.select(_playbook))}
    declared = {i.id: i.declared_at for i in incidents}
    for incident in incidents:
        spec = specs.get((incident.playbook_slug, incident.playbook_version))
        if spec is not None:
            minutes = spec["business_impact"]["mtpd_minutes"]
            conn.execute(
                _incident.update()
                .where(_incident.c.id == incident.id)
                .values(mtpd_minutes=minutes, mtpd_at=incident.declared_at + timedelta(minutes=minutes))
            )
    if not declared:
        return
    mine = sa.select(_notice).where(_notice.c.subject_type.in_([subject for subject, *_ in _OBLIGATIONS.values()]))
    planned = {(n.kind, n.subject_type, n.subject_id, n.ref) for n in conn.execute(mine)}
    for table, (subject, due_kind, overdue_kind, owed) in _OBLIGATIONS.items():
        rows = sa.table(table, sa.column("id", sa.Integer), sa.column("incident_id", sa.Integer),
                        sa.column("due_at", UTCDateTime()), sa.column("status", sa.String))  # fmt: skip
        query = sa.select(rows).where(rows.c.status.in_(owed), rows.c.incident_id.in_(list(declared)))
        for row in conn.execute(query):
            ref, start = row.due_at.isoformat(), declared[row.incident_id]
            for kind, due in ((due_kind, row.due_at - _REMINDER), (overdue_kind, row.due_at)):
                if (kind, subject, row.id, ref) not in planned:
                    conn.execute(
                        _notice.insert().values(
                            kind=kind, subject_type=subject, subject_id=row.id, ref=ref, due_at=max(start, due),
                            data={"incident_id": row.incident_id}, fired_at=None,
                        )
                    )  # fmt: skip


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
