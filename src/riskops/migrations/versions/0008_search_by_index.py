"""search by index: risk text search and the rare-tag filter answered by indexes, not scans

On PostgreSQL, pg_trgm GIN indexes on risk.title and risk.description, which ILIKE '%q%' uses as it is.
On SQLite, risk_fts: an external-content FTS5 table (trigram tokenizer) over the same two columns, kept
in step with risk by triggers; the list narrows to its matches and then applies the same ILIKE.
Both: risk_tag(tag, risk_id), so a tag finds its risks without a look-up per tag row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-12
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here (not imported from the app) so that this revision does the same thing forever.
_SQLITE_UP = (
    "CREATE VIRTUAL TABLE risk_fts USING fts5("
    "title, description, content='risk', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER risk_fts_insert AFTER INSERT ON risk BEGIN"
    " INSERT INTO risk_fts (rowid, title, description) VALUES (new.id, new.title, new.description); END",
    "CREATE TRIGGER risk_fts_delete AFTER DELETE ON risk BEGIN"
    " INSERT INTO risk_fts (risk_fts, rowid, title, description)"
    " VALUES ('delete', old.id, old.title, old.description); END",
    "CREATE TRIGGER risk_fts_update AFTER UPDATE OF title, description ON risk BEGIN"
    " INSERT INTO risk_fts (risk_fts, rowid, title, description)"
    " VALUES ('delete', old.id, old.title, old.description);"
    " INSERT INTO risk_fts (rowid, title, description) VALUES (new.id, new.title, new.description); END",
    "INSERT INTO risk_fts (risk_fts) VALUES ('rebuild')",  # the risks already stored
)
_SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS risk_fts_update",
    "DROP TRIGGER IF EXISTS risk_fts_delete",
    "DROP TRIGGER IF EXISTS risk_fts_insert",
    "DROP TABLE IF EXISTS risk_fts",
)
_POSTGRES_UP = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_risk_title_trgm ON risk USING gin (title gin_trgm_ops)",
    "CREATE INDEX ix_risk_description_trgm ON risk USING gin (description gin_trgm_ops)",
)
_POSTGRES_DOWN = (  # the extension stays: other objects in the database may have come to use it
    "DROP INDEX IF EXISTS ix_risk_description_trgm",
    "DROP INDEX IF EXISTS ix_risk_title_trgm",
)


def upgrade() -> None:
    op.create_index("ix_risk_tag_tag_risk_id", "risk_tag", ["tag", "risk_id"])
    op.drop_index("ix_risk_tag_tag", table_name="risk_tag")
    for statement in _SQLITE_UP if op.get_bind().dialect.name == "sqlite" else _POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in _SQLITE_DOWN if op.get_bind().dialect.name == "sqlite" else _POSTGRES_DOWN:
        op.execute(statement)
    op.create_index("ix_risk_tag_tag", "risk_tag", ["tag"])
    op.drop_index("ix_risk_tag_tag_risk_id", table_name="risk_tag")
