"""acceptance as a workflow: acceptance records (acceptance, acceptance_risk, and the append-only
acceptance_decision and acceptance_state); every risk's acceptance (an approver and an expiry on the risk) becomes
an approved acceptance, recorded as given outside riskops, with the risk's state at migration; the risk's
acceptance notices become the acceptance's, so that each still fires once

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime
from riskops.risks.matrices.models import MatrixSpec

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Decisions and the states they applied to are audit evidence: the database refuses to rewrite or erase them.
APPEND_ONLY = ("acceptance_decision", "acceptance_state")
RISK_NOTICES = ("risk.acceptance_expiring", "risk.acceptance_expired")
MIGRATION = "riskops migration 0014"
# The warning a risk's acceptance got before 0014 (RISKOPS_ACCEPTANCE_WARNING_DAYS, at its default) on a downgrade.
_WARNING = timedelta(days=30)
RATINGS = tuple(f"{w}_{p}" for w in ("inherent", "residual") for p in ("likelihood", "impact", "score", "level"))


def upgrade() -> None:
    op.create_table(
        "acceptance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_by_identity", sa.String(length=64), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("extends_id", sa.Integer(), nullable=True),
        sa.Column("recorded", sa.Boolean(), nullable=False),
        sa.Column("needs_reapproval", sa.Boolean(), nullable=False),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["extends_id"], ["acceptance.id"], name=op.f("fk_acceptance_extends_id_acceptance")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance")),
    )
    op.create_index("ix_acceptance_status_expires_at", "acceptance", ["status", "expires_at", "id"])
    op.create_table(
        "acceptance_risk",
        sa.Column("acceptance_id", sa.Integer(), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("treatment_before", sa.String(length=16), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.Column("released_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["acceptance_id"], ["acceptance.id"], name=op.f("fk_acceptance_risk_acceptance_id_acceptance")
        ),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], name=op.f("fk_acceptance_risk_risk_id_risk")),
        sa.PrimaryKeyConstraint("acceptance_id", "risk_id", name=op.f("pk_acceptance_risk")),
    )
    op.create_index("ix_acceptance_risk_risk_id", "acceptance_risk", ["risk_id", "acceptance_id"])
    op.create_table(
        "acceptance_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("acceptance_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["acceptance_id"], ["acceptance.id"], name=op.f("fk_acceptance_decision_acceptance_id_acceptance")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance_decision")),
    )
    op.create_index("ix_acceptance_decision_acceptance_id_id", "acceptance_decision", ["acceptance_id", "id"])
    op.create_table(
        "acceptance_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("acceptance_id", sa.Integer(), nullable=False),
        sa.Column("risk_id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("treatment", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
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
        sa.Column("appetite", sa.String(length=40), nullable=False),
        sa.Column("tolerance", sa.String(length=40), nullable=True),
        sa.Column("outside_appetite", sa.Boolean(), nullable=False),
        sa.Column("beyond_tolerance", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["acceptance_id"], ["acceptance.id"], name=op.f("fk_acceptance_state_acceptance_id_acceptance")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["acceptance_decision.id"],
            name=op.f("fk_acceptance_state_decision_id_acceptance_decision"),
        ),  # fmt: skip
        sa.ForeignKeyConstraint(
            ["matrix_version"], ["risk_matrix.version"], name=op.f("fk_acceptance_state_matrix_version_risk_matrix")
        ),
        sa.ForeignKeyConstraint(["risk_id"], ["risk.id"], name=op.f("fk_acceptance_state_risk_id_risk")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance_state")),
    )
    op.create_index("ix_acceptance_state_acceptance_id_id", "acceptance_state", ["acceptance_id", "id"])
    for table in APPEND_ONLY:
        _forbid_changes(table)
    _records_from_risks(op.get_bind())


def downgrade() -> None:
    """The risks kept their approver and expiry all along (the acceptance in force mirrors them): the records go,
    and the risks' own expiry notices come back for those still accepted."""
    connection = op.get_bind()
    notice = _notice_table()
    connection.execute(notice.delete().where(notice.c.subject_type == "acceptance"))
    risk = _risk_table()
    accepted = connection.execute(
        sa.select(risk.c.id, risk.c.acceptance_expires_at).where(
            risk.c.status == "open", risk.c.treatment == "accept", risk.c.acceptance_expires_at.is_not(None)
        )
    ).all()
    for risk_id, expires_at in accepted:
        planned = connection.execute(
            sa.select(notice.c.kind).where(
                notice.c.subject_type == "risk", notice.c.subject_id == risk_id, notice.c.ref == expires_at.isoformat()
            )
        ).scalars()
        dues = {RISK_NOTICES[0]: expires_at - _WARNING, RISK_NOTICES[1]: expires_at}
        for kind in set(RISK_NOTICES) - set(planned):
            connection.execute(notice.insert().values(
                kind=kind, subject_type="risk", subject_id=risk_id, ref=expires_at.isoformat(), due_at=dues[kind],
                data={}, fired_at=None,
            ))  # fmt: skip
    for table in APPEND_ONLY:
        _allow_changes(table)
    for table, index in (
        ("acceptance_state", "ix_acceptance_state_acceptance_id_id"),
        ("acceptance_decision", "ix_acceptance_decision_acceptance_id_id"),
        ("acceptance_risk", "ix_acceptance_risk_risk_id"),
        ("acceptance", "ix_acceptance_status_expires_at"),
    ):
        op.drop_index(index, table_name=table)
        op.drop_table(table)


def _records_from_risks(connection: sa.Connection) -> None:
    """Each risk's acceptance as an approved acceptance: its approver, its expiry, who recorded it and when (the
    history entry that set it), the risk's state now, and the notices of its end. The treatment the risk had
    before was never recorded: it goes back to 'mitigate' (what voiding an acceptance did) when this ends."""
    risk, notice = _risk_table(), _notice_table()
    old_notices = connection.execute(
        sa.select(notice.c.id, notice.c.kind, notice.c.subject_id, notice.c.ref, notice.c.due_at, notice.c.fired_at)
        .where(notice.c.subject_type == "risk", notice.c.kind.in_(RISK_NOTICES))
    ).all()  # fmt: skip
    connection.execute(notice.delete().where(notice.c.id.in_([n.id for n in old_notices if n.fired_at is None])))
    by_key = {(n.kind, n.subject_id, n.ref): n for n in old_notices}
    accepted = connection.execute(
        sa.select(risk).where(risk.c.acceptance_approver.is_not(None), risk.c.acceptance_expires_at.is_not(None))
        .order_by(risk.c.id)
    ).all()  # fmt: skip
    if not accepted:
        return
    specs = {
        version: MatrixSpec.model_validate_json(spec) if isinstance(spec, str) else MatrixSpec.model_validate(spec)
        for version, spec in connection.execute(sa.text("SELECT version, spec FROM risk_matrix"))
    }
    limits = {
        key: (appetite, tolerance)
        for key, appetite, tolerance in connection.execute(
            sa.text("SELECT category_key, appetite, tolerance FROM category_appetite")
        )
    }
    setters = _setters(connection, [row.id for row in accepted])
    now = datetime.now(UTC)
    for row in accepted:
        at, actor = setters.get(row.id, (now, MIGRATION))
        expires_at: datetime = row.acceptance_expires_at
        acceptance_id = _insert(connection, "acceptance", {
            "status": "approved", "requested_by": actor, "requested_by_identity": f"name:{actor.casefold()}"[:64],
            "requested_at": at, "justification": f"Approved outside riskops by {row.acceptance_approver}; "
            "migrated from the risk's acceptance fields when acceptances became records (0014). The treatment "
            "before acceptance was not recorded: 'mitigate' is assumed.",
            "conditions": "", "expires_at": expires_at, "extends_id": None, "recorded": True,
            "needs_reapproval": False, "approved_at": at, "ended_at": None, "updated_at": now, "version": 1,
        })  # fmt: skip
        _insert(connection, "acceptance_risk", {
            "acceptance_id": acceptance_id, "risk_id": row.id, "treatment_before": "mitigate", "released_at": None,
            "released_reason": None,
        }, numbered=False)  # fmt: skip
        decision_id = _insert(connection, "acceptance_decision", {
            "acceptance_id": acceptance_id, "kind": "approve", "decided_by": row.acceptance_approver,
            "identity": f"name:{actor.casefold()}"[:64], "role": "unknown", "comment": "Migrated (0014).",
            "recorded_by": actor, "decided_at": at,
        })  # fmt: skip
        spec = specs[row.matrix_version]
        appetite, tolerance = _limits(spec, limits.get(row.category.strip().lower()))
        _insert(connection, "acceptance_state", {
            "acceptance_id": acceptance_id, "risk_id": row.id, "decision_id": decision_id, "at": now,
            **{name: getattr(row, name) for name in ("status", "treatment", "category", "matrix_version", *RATINGS)},
            "score": row.score, "level": row.level, "appetite": appetite, "tolerance": tolerance,
            "outside_appetite": spec.rank(row.level) > spec.rank(appetite),
            "beyond_tolerance": tolerance is not None and spec.rank(row.level) > spec.rank(tolerance),
        }, numbered=False)  # fmt: skip
        state = {"status": "approved", "expires_at": expires_at.isoformat(), "needs_reapproval": False,
                 "approved_at": at.isoformat(), "ended_at": None}  # fmt: skip
        _insert(connection, "audit_entry", {
            "entity_type": "acceptance", "entity_id": str(acceptance_id), "action": "migrated", "actor": MIGRATION,
            "at": now, "changes": {k: {"old": None, "new": v} for k, v in state.items() if v is not None},
            "note": f"R-{row.id:04d}'s acceptance by {row.acceptance_approver}, migrated",
        }, numbered=False)  # fmt: skip
        ref = expires_at.isoformat()
        warning = by_key.get(("risk.acceptance_expiring", row.id, ref))
        if warning is not None and warning.fired_at is None:  # due as the settings then planned it
            _plan(connection, "acceptance.expiring", acceptance_id, ref, warning.due_at, {})
        ended = by_key.get(("risk.acceptance_expired", row.id, ref))
        # Lapsed already, and announced on the risk: its end is still to be acted on, without announcing it again.
        announced = {"risk_events": False} if ended is not None and ended.fired_at is not None else {}
        _plan(connection, "acceptance.expired", acceptance_id, ref, expires_at, announced)


def _setters(connection: sa.Connection, risk_ids: list[int]) -> dict[int, tuple[datetime, str]]:
    """(when, by whom) each risk's acceptance was last given: its latest history entry that set the approver."""
    audit = sa.table(
        "audit_entry", sa.column("id", sa.Integer), sa.column("entity_type", sa.String),
        sa.column("entity_id", sa.String), sa.column("at", UTCDateTime), sa.column("actor", sa.String),
        sa.column("changes", sa.JSON),
    )  # fmt: skip
    found: dict[int, tuple[datetime, str]] = {}
    for start in range(0, len(risk_ids), 500):
        chunk = [str(i) for i in risk_ids[start : start + 500]]
        entries = connection.execute(
            sa.select(audit.c.entity_id, audit.c.at, audit.c.actor, audit.c.changes)
            .where(audit.c.entity_type == "risk", audit.c.entity_id.in_(chunk))
            .order_by(audit.c.id)
        )  # fmt: skip
        for entity_id, at, actor, changes in entries:
            if (changes or {}).get("acceptance_approver", {}).get("new") is not None:
                found[int(entity_id)] = (at, actor)
    return found


def _limits(spec: MatrixSpec, row: tuple[str, str | None] | None) -> tuple[str, str | None]:
    """A category's appetite and tolerance on `spec` (risks.appetite.service.limits_on, as it stands at 0014)."""
    names = {level.name for level in spec.levels}
    if row is None or row[0] not in names:
        return spec.appetite, None
    return row[0], row[1] if row[1] in names else None


def _insert(connection: sa.Connection, table: str, values: dict[str, Any], *, numbered: bool = True) -> int:
    """Insert a row (times as UTCDateTime writes them on each database); its id, when the table numbers rows."""

    def typed(name: str) -> sa.ColumnClause[Any]:
        if name == "changes":
            return sa.column(name, sa.JSON)
        return sa.column(name, UTCDateTime) if name == "at" or name.endswith("_at") else sa.column(name)

    target = sa.table(table, sa.column("id", sa.Integer), *(typed(name) for name in values))
    statement = target.insert().values(values)
    if not numbered:
        connection.execute(statement)
        return 0
    return int(connection.execute(statement.returning(target.c.id)).scalar_one())


def _plan(
    connection: sa.Connection, kind: str, acceptance_id: int, ref: str, due_at: datetime, data: dict[str, Any]
) -> None:
    connection.execute(_notice_table().insert().values(
        kind=kind, subject_type="acceptance", subject_id=acceptance_id, ref=ref, due_at=due_at, data=data,
        fired_at=None,
    ))  # fmt: skip


def _risk_table() -> sa.TableClause:
    names = ("id", "status", "treatment", "category", "matrix_version", *RATINGS, "score", "level",
             "acceptance_approver")  # fmt: skip
    return sa.table("risk", *(sa.column(n) for n in names), sa.column("acceptance_expires_at", UTCDateTime))


def _notice_table() -> sa.TableClause:
    return sa.table(
        "notice", sa.column("id", sa.Integer), sa.column("kind", sa.String), sa.column("subject_type", sa.String),
        sa.column("subject_id", sa.Integer), sa.column("ref", sa.String), sa.column("due_at", UTCDateTime),
        sa.column("data", sa.JSON), sa.column("fired_at", UTCDateTime),
    )  # fmt: skip


def _forbid_changes(table: str) -> None:
    """As the history tables (0001): the function riskops_append_only exists on PostgreSQL since then."""
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
