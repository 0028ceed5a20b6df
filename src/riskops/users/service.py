"""Users, passwords, set-password links, sign-in with lockout, and console sessions: plain functions, the caller
commits."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pwdlib import PasswordHash
from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import get_row
from riskops.errors import Conflict, Unauthorized, Unprocessable, field_error
from riskops.users.models import (
    DISPLAY_NAME_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    PasswordToken,
    User,
    UserCreate,
    UserSession,
    UserUpdate,
)

SESSION_COOKIE = "riskops_session"
CSRF_FIELD, CSRF_HEADER = "csrf_token", "X-CSRF-Token"
# A signed-in user's principal id (idempotency keys are stored per principal) never meets an API key's.
USER_PRINCIPAL_BASE = -(2**30)
# One message for every refusal, so that the answer never tells whether an address has an account.
SIGN_IN_REFUSED = "The e-mail or password is wrong, or the account is locked after too many attempts: try later."
# last_seen_at is written at most this often, not on every request.
TOUCH_EVERY = timedelta(minutes=1)

hasher = PasswordHash.recommended()  # argon2id with the library's current parameters
# Verified against when the address is unknown, so that an unknown address costs the same time as a known one.
_DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))


def token_hash(token: str) -> str:
    # Tokens are 256 random bits: a fast hash is safe, as for API keys.
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password(password: str, field: str = "password") -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise Unprocessable(
            f"A password has {PASSWORD_MIN} to {PASSWORD_MAX} characters.",
            errors=[field_error(("body", field), f"must have {PASSWORD_MIN} to {PASSWORD_MAX} characters")],
        )


def _snapshot(user: User) -> dict[str, Any]:
    return {
        "email": user.email, "display_name": user.display_name, "role": str(user.role), "active": user.active,
        "language": user.language, "time_zone": user.time_zone,
    }  # fmt: skip


def create_user(session: Session, data: UserCreate, *, actor: str) -> User:
    email = normalise_email(str(data.email))
    if session.exec(select(User.id).where(User.email == email)).first() is not None:
        raise Conflict(f"A user with the e-mail {email} exists already.")
    name = data.display_name.strip() or str(data.email).split("@")[0][:DISPLAY_NAME_MAX]
    user = User(email=email, display_name=name, role=data.role, language=data.language, time_zone=data.time_zone)
    session.add(user)
    session.flush()
    audit.service.record(
        session, entity_type="user", entity_id=user.id, action="created", actor=actor,
        changes=audit.service.diff({}, _snapshot(user)),
    )  # fmt: skip
    return user


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.id))))


def get_user(session: Session, user_id: int, **options: Any) -> User:
    return get_row(session, User, user_id, "User", **options)


def update_user(session: Session, user_id: int, data: UserUpdate, *, actor: str) -> User:
    user = get_user(session, user_id, with_for_update=True)
    before = _snapshot(user)
    for field, value in data.model_dump(exclude_unset=True).items():
        if value is None:
            raise Unprocessable(f"'{field}' cannot be null.", errors=[field_error(("body", field), "may not be null")])
        setattr(user, field, value)
    changes = audit.service.diff(before, _snapshot(user))
    if changes:
        user.updated_at = utcnow()
        session.add(user)
        audit.service.record(
            session, entity_type="user", entity_id=user.id, action="updated", actor=actor, changes=changes
        )
        if not user.active:
            end_sessions(session, user.id)  # a disabled user is signed out at once, everywhere
    return user


def set_password(session: Session, user: User, password: str, *, actor: str) -> None:
    """Hash and store the password, and end every session of the user (the password may have leaked)."""
    check_password(password)
    user.password_hash = hasher.hash(password)
    user.failed_sign_ins, user.first_failure_at, user.locked_until = 0, None, None
    user.updated_at = utcnow()
    session.add(user)
    end_sessions(session, user.id)
    # The history says that it changed, never what to.
    audit.service.record(session, entity_type="user", entity_id=user.id, action="password set", actor=actor, changes={})


def issue_password_link(session: Session, user_id: int, settings: Settings, *, actor: str) -> tuple[str, datetime]:
    """A one-time token to set the user's password: returned this once, stored as its hash."""
    user = get_user(session, user_id)
    token = secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(hours=settings.password_link_hours)
    session.add(PasswordToken(token_hash=token_hash(token), user_id=user.id, expires_at=expires_at))
    audit.service.record(
        session, entity_type="user", entity_id=user.id, action="password link issued", actor=actor,
        changes={"expires_at": {"old": None, "new": expires_at.isoformat()}},
    )  # fmt: skip
    return token, expires_at


def password_link_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/console/set-password?token={token}"


def use_password_link(session: Session, token: str, password: str) -> User:
    check_password(password)
    row = session.exec(
        select(PasswordToken).where(PasswordToken.token_hash == token_hash(token)).with_for_update()
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise Unauthorized("This set-password link is unknown, used or expired: ask an admin for a new one.")
    row.used_at = utcnow()
    session.add(row)
    user = get_user(session, row.user_id, with_for_update=True)
    set_password(session, user, password, actor=user.email)
    return user


@dataclass(frozen=True)
class SignedIn:
    token: str  # for the cookie only: stored as its hash
    csrf_token: str
    expires_at: datetime


def sign_in(session: Session, email: str, password: str, settings: Settings) -> SignedIn | None:
    """A new session, or None (the caller commits either way: a failure is counted toward the lockout)."""
    now = utcnow()
    user = session.exec(select(User).where(User.email == normalise_email(email)).with_for_update()).first()
    if user is None or user.password_hash is None or len(password) > PASSWORD_MAX:
        hasher.verify(password[:PASSWORD_MAX], _DUMMY_HASH)
        return None
    if user.locked_until is not None and user.locked_until > now:
        hasher.verify(password, _DUMMY_HASH)  # the same cost: a locked account answers like a wrong password
        return None
    if not hasher.verify(password, user.password_hash) or not user.active:
        _count_failure(user, now, settings)
        session.add(user)
        return None
    user.failed_sign_ins, user.first_failure_at, user.locked_until = 0, None, None
    session.add(user)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=settings.session_absolute_hours)
    session.add(UserSession(token_hash=token_hash(token), csrf_token=csrf, user_id=user.id, expires_at=expires_at))
    return SignedIn(token=token, csrf_token=csrf, expires_at=expires_at)


def _count_failure(user: User, now: datetime, settings: Settings) -> None:
    window = timedelta(minutes=settings.sign_in_lockout_minutes)
    if user.first_failure_at is None or user.first_failure_at + window <= now:
        user.failed_sign_ins, user.first_failure_at = 1, now
    else:
        user.failed_sign_ins += 1
    if user.failed_sign_ins >= settings.sign_in_max_failures:
        user.locked_until = now + window
        user.failed_sign_ins, user.first_failure_at = 0, None


@dataclass(frozen=True)
class SessionPrincipal:
    principal: Principal
    csrf_token: str
    session_id: int
    stale: bool  # last seen long enough ago to be written again
    display_name: str
    language: str
    time_zone: str


def principal_of(user: User) -> Principal:
    # The e-mail is the "who": unique and stable, where display names may repeat.
    return Principal(key_id=USER_PRINCIPAL_BASE - user.id, name=user.email, role=Role(user.role), user_id=user.id)


def session_principal(session: Session, token: str, settings: Settings) -> SessionPrincipal | None:
    """The signed-in, active user behind a session cookie, if the session is alive."""
    now = utcnow()
    row = session.exec(
        select(UserSession, User)
        .join(User, col(User.id) == col(UserSession.user_id))
        .where(UserSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    user_session, user = row
    idle = timedelta(minutes=settings.session_idle_minutes)
    if not user.active or user_session.expires_at <= now or user_session.last_seen_at + idle <= now:
        return None
    return SessionPrincipal(
        principal_of(user), user_session.csrf_token, user_session.id, user_session.last_seen_at + TOUCH_EVERY <= now,
        user.display_name, user.language, user.time_zone,
    )  # fmt: skip


def touch_session(session: Session, session_id: int) -> None:
    row = session.get(UserSession, session_id)
    if row is not None:
        row.last_seen_at = utcnow()
        session.add(row)


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def end_session(session: Session, token: str) -> None:
    session.execute(delete(UserSession).where(col(UserSession.token_hash) == token_hash(token)))


def end_sessions(session: Session, user_id: int) -> None:
    session.execute(delete(UserSession).where(col(UserSession.user_id) == user_id))


def has_users(session: Session) -> bool:
    return session.exec(select(User.id).limit(1)).first() is not None


# Set-password links are kept this long after their end, so that "used or expired" can be told apart meanwhile.
LINK_KEPT = timedelta(days=1)


def delete_ended(session: Session, settings: Settings) -> tuple[int, int]:
    """Delete sessions past their idle or absolute end, and links used or expired a while ago: (sessions, links).
    An ended session opens nothing either way; this keeps the tables to the live ones."""
    now = utcnow()
    idle = now - timedelta(minutes=settings.session_idle_minutes)
    sessions = session.execute(
        delete(UserSession).where(or_(col(UserSession.expires_at) <= now, col(UserSession.last_seen_at) <= idle))
    )
    links = session.execute(
        delete(PasswordToken).where(
            or_(col(PasswordToken.expires_at) <= now - LINK_KEPT, col(PasswordToken.used_at) <= now - LINK_KEPT)
        )
    )
    return sessions.rowcount, links.rowcount  # type: ignore[attr-defined]
