"""API keys: service keys an admin makes, and users' own keys, which work only while their user may use them."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy
from sqlalchemy import Connection
from sqlmodel import Session, col, select, update

from riskops import audit
from riskops.apikeys.models import ApiKey, ApiKeyCreate, ApiKeyPublic, Role
from riskops.clock import now as utcnow
from riskops.db import get_row
from riskops.errors import Conflict, Forbidden, NotFound, Unauthorized, field_error
from riskops.users.models import User

SECRET_PREFIX = "rko_"
# The "who" of a history entry holds 200 characters (audit_entry.actor and the other *_by columns).
ACTOR_MAX = 200
# last_used_at is written at most this often per key, not on every request.
USE_NOTED_EVERY = timedelta(minutes=1)
OWNER_REFUSED = (
    "The API key's user is disabled, or their role is now below the key's: it works again only if that changes."
)


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
    # A user's own key: that user's id (the key is checked against the user on every request, never cached).
    owner_id: int | None = None

    def may(self, role: Role) -> bool:
        return self.role.rank >= role.rank


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def acting_name(email: str, key_name: str) -> str:
    """The 'who' of a change made with a user's own key: 'ann@example.org (key ci-bot)', the key's name shortened
    to fit the history's 200 characters (the e-mail alone when even that would not fit)."""
    room = ACTOR_MAX - len(email) - len(" (key )")
    if room <= 1:
        return email
    return f"{email} (key {key_name if len(key_name) <= room else key_name[: room - 1] + '…'})"


def create_key(
    session: Session, data: ApiKeyCreate, *, created_by: str, user_id: int | None = None
) -> tuple[ApiKey, str]:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=data.name, role=data.role, key_hash=hash_secret(secret), prefix=secret[:10], created_by=created_by,
        user_id=user_id,
    )  # fmt: skip
    session.add(key)
    session.flush()
    changes: dict[str, dict[str, Any]] = {
        "name": {"old": None, "new": key.name}, "role": {"old": None, "new": str(key.role)}
    }  # fmt: skip
    if user_id is not None:
        changes["user_id"] = {"old": None, "new": user_id}
    audit.service.record(
        session, entity_type="api_key", entity_id=key.id, action="created", actor=created_by, changes=changes
    )
    return key, secret


def create_own_key(session: Session, user_id: int, data: ApiKeyCreate) -> tuple[ApiKey, str]:
    """A key of the user's own, with a role at most theirs; the history names them."""
    user = get_row(session, User, user_id, "User")
    if data.role.rank > Role(user.role).rank:
        raise Forbidden(
            f"A key of yours may have at most your own role ('{user.role}'), not '{data.role}'.",
            errors=[field_error(("body", "role"), f"at most '{user.role}', your own role")],
        )
    return create_key(session, data, created_by=user.email, user_id=user.id)


@dataclass(frozen=True)
class KeyCheck:
    principal: Principal
    use_is_due: bool  # last used long enough ago (or never) to be written again


def authenticate(conn: Connection, key_hash: str) -> KeyCheck | None:
    """The active key with this hash (see hash_secret), if any; a user's key only while the user may use it."""
    row = conn.execute(
        sqlalchemy.select(  # sqlmodel's select is typed for at most four columns
            col(ApiKey.id), col(ApiKey.name), col(ApiKey.role), col(ApiKey.last_used_at), col(ApiKey.user_id),
            col(User.email), col(User.active), col(User.role),
        )
        .outerjoin(User, col(User.id) == col(ApiKey.user_id))
        .where(col(ApiKey.key_hash) == key_hash, col(ApiKey.revoked_at).is_(None))
    ).first()  # fmt: skip
    if row is None:
        return None
    key_id, name, role, last_used_at, user_id, email, active, user_role = row
    principal = Principal(key_id=key_id, name=name, role=Role(role))
    if user_id is not None:
        if not active or Role(user_role).rank < principal.role.rank:
            raise Unauthorized(OWNER_REFUSED)
        principal = Principal(key_id=key_id, name=acting_name(email, name), role=Role(role), owner_id=user_id)
    due = last_used_at is None or utcnow() - last_used_at >= USE_NOTED_EVERY
    return KeyCheck(principal, due)


def record_use(session: Session, key_id: int) -> None:
    session.exec(update(ApiKey).where(col(ApiKey.id) == key_id).values(last_used_at=utcnow()))


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.id))))


def public_keys(session: Session, *, user_id: int | None = None) -> list[ApiKeyPublic]:
    """Every key with its owner's e-mail (revoked ones too), oldest first; only the user's own when given."""
    query = select(ApiKey, User.email).outerjoin(User, col(User.id) == col(ApiKey.user_id))
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    return [present(key, owner) for key, owner in session.exec(query.order_by(col(ApiKey.id)))]


def present(key: ApiKey, owner: str | None) -> ApiKeyPublic:
    fields = {name: getattr(key, name) for name in ApiKeyPublic.model_fields if name != "owner"}
    return ApiKeyPublic.model_validate({**fields, "owner": owner})


def public_key(session: Session, key: ApiKey) -> ApiKeyPublic:
    owner = session.get(User, key.user_id) if key.user_id is not None else None
    return present(key, owner.email if owner else None)


def revoke_key(session: Session, key_id: int, *, revoked_by: str) -> ApiKey:
    return _revoke(session, get_row(session, ApiKey, key_id, "API key", with_for_update=True), revoked_by)


def revoke_own_key(session: Session, user_id: int, key_id: int, *, revoked_by: str) -> ApiKey:
    """The user's own key revoked; another's is answered as if it did not exist."""
    key = get_row(session, ApiKey, key_id, "API key", with_for_update=True)
    if key.user_id != user_id:
        raise NotFound(f"API key {key_id} does not exist.")
    return _revoke(session, key, revoked_by)


def _revoke(session: Session, key: ApiKey, revoked_by: str) -> ApiKey:
    if key.revoked_at is not None:
        raise Conflict(f"API key {key.id} is already revoked.")
    key.revoked_at = utcnow()
    session.add(key)
    audit.service.record(
        session, entity_type="api_key", entity_id=key.id, action="revoked", actor=revoked_by,
        changes={"revoked_at": {"old": None, "new": key.revoked_at.isoformat()}},
    )  # fmt: skip
    return key


def has_active_keys(session: Session) -> bool:
    return session.exec(select(ApiKey.id).where(col(ApiKey.revoked_at).is_(None)).limit(1)).first() is not None
