import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.models import ApiKey, ApiKeyCreate, Role
from riskops.clock import now as utcnow
from riskops.db import get_row
from riskops.errors import Conflict

SECRET_PREFIX = "rko_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key's name is the 'who' in every history entry."""

    key_id: int
    name: str
    role: Role
    # A machine acting on its own (the scheduler, an inbound integration), not a person: its acknowledgements
    # do not count as a human's time to acknowledge.
    automatic: bool = False
    # A signed-in person (riskops.users), not a key: their user id.
    user_id: int | None = None

    def may(self, role: Role) -> bool:
        return self.role.rank >= role.rank


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, data: ApiKeyCreate, *, created_by: str) -> tuple[ApiKey, str]:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=data.name, role=data.role, key_hash=hash_secret(secret), prefix=secret[:10], created_by=created_by
    )
    session.add(key)
    session.flush()
    audit.service.record(
        session,
        entity_type="api_key",
        entity_id=key.id,
        action="created",
        actor=created_by,
        changes={"name": {"old": None, "new": key.name}, "role": {"old": None, "new": str(key.role)}},
    )
    return key, secret


def authenticate(conn: Connection, key_hash: str) -> Principal | None:
    """The active key with this hash (see hash_secret), if any."""
    row = conn.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.role).where(ApiKey.key_hash == key_hash, col(ApiKey.revoked_at).is_(None))
    ).first()
    return Principal(key_id=row.id, name=row.name, role=Role(row.role)) if row else None


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.id))))


def revoke_key(session: Session, key_id: int, *, revoked_by: str) -> ApiKey:
    key = get_row(session, ApiKey, key_id, "API key", with_for_update=True)
    if key.revoked_at is not None:
        raise Conflict(f"API key {key_id} is already revoked.")
    key.revoked_at = utcnow()
    session.add(key)
    audit.service.record(
        session,
        entity_type="api_key",
        entity_id=key_id,
        action="revoked",
        actor=revoked_by,
        changes={"revoked_at": {"old": None, "new": key.revoked_at.isoformat()}},
    )
    return key


def has_active_keys(session: Session) -> bool:
    return session.exec(select(ApiKey.id).where(col(ApiKey.revoked_at).is_(None)).limit(1)).first() is not None
