"""secrets stay secret: calendar feed tokens, and credentials masked in the alert bodies already stored

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import json
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from riskops.db import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_feed_token_token_hash")),
    )
    _mask_stored_bodies()


# Written out here (not imported from the app) so that this revision does the same thing forever: what
# riskops.integrations.redaction masked when it was written.
_MASK = "***"
_SECRET_SUFFIXES = (
    "token", "secret", "password", "passwd", "apikey", "routingkey", "authorization", "credential", "credentials",
    "privatekey", "cookie",
)  # fmt: skip
_NAME = r"[\w.-]*?(?:token|secret|password|passwd|api[_-]?key|routing[_-]?key|authorization|credentials?|private[_-]?key)|auth|pwd"  # noqa: E501
_PATTERNS = (
    (re.compile(r"\b(?:rk[oikf]_[A-Za-z0-9_-]{8,}|whsec_[A-Za-z0-9+/=]{8,})"), _MASK),
    (re.compile(rf'(?i)("(?:{_NAME})"\s*:\s*)(?!"\*\*\*")(?:"(?:[^"\\]|\\.)*"?|[^\s,}}\]]+)'), rf'\1"{_MASK}"'),
    (re.compile(r"(?i)\b(bearer\s+)(?!\*\*\*)[A-Za-z0-9._~+/=-]+"), rf"\1{_MASK}"),
    (re.compile(r"(?i)\b(basic\s+)[A-Za-z0-9+/]{8,}={0,2}(?![\w+/=])"), rf"\1{_MASK}"),
    (re.compile(rf"(?i)(?<![\w-])((?:{_NAME})\s*[:=]\s*)(?!\*\*\*)[^\s&#\"',;}}\]]+"), rf"\1{_MASK}"),
)
_received = sa.table("received_alert", sa.column("id", sa.Integer), sa.column("body", sa.Text))
_BATCH = 500


def _secret_name(name: str) -> bool:
    plain = re.sub(r"[\W_]", "", name.lower())
    return plain in ("auth", "pwd") or plain.endswith(_SECRET_SUFFIXES)


def _mask_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _mask_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _MASK if _secret_name(str(k)) and v not in (None, "", _MASK) else _mask_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_value(v) for v in value]
    return _mask_text(value) if isinstance(value, str) else value


def _masked(body: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return _mask_text(body)
    masked = _mask_value(parsed)
    return body if masked == parsed else json.dumps(masked, ensure_ascii=False)


def _mask_stored_bodies() -> None:
    """Bodies stored before masking existed keep no routing key or token readable after the upgrade."""
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(_received.c.id, _received.c.body)
            .where(_received.c.id > last)
            .order_by(_received.c.id)
            .limit(_BATCH)
        ).all()
        for row in rows:
            masked = _masked(row.body)
            if masked != row.body:
                conn.execute(_received.update().where(_received.c.id == row.id).values(body=masked))
        if len(rows) < _BATCH:
            return
        last = rows[-1].id


def downgrade() -> None:
    # The masked bodies stay masked: what was taken out is gone.
    op.drop_table("feed_token")
