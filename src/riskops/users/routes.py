"""The users API (admins); signing in is the console's (riskops.console.session)."""

from fastapi import APIRouter, status

from riskops.auth import Admin, Config, Db
from riskops.users import service
from riskops.users.models import PasswordLink, User, UserCreate, UserPublic, UserUpdate

router = APIRouter(prefix="/api/v1/users", tags=["users"])


def _public(user: User) -> UserPublic:
    fields = {name: getattr(user, name) for name in UserPublic.model_fields if name != "has_password"}
    return UserPublic.model_validate({**fields, "has_password": user.password_hash is not None})


@router.get("")
def list_users(db: Db, _: Admin) -> list[UserPublic]:
    with db.read() as session:
        return [_public(u) for u in service.list_users(session)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(data: UserCreate, db: Db, who: Admin) -> UserPublic:
    """A user without a password: issue them a set-password link (`POST /api/v1/users/{id}/password-link`)."""
    with db.write() as session:
        return _public(service.create_user(session, data, actor=who.name))


@router.patch("/{user_id}")
def update_user(user_id: int, data: UserUpdate, db: Db, who: Admin) -> UserPublic:
    """Disabling a user (`active: false`) ends their sessions at once."""
    with db.write() as session:
        return _public(service.update_user(session, user_id, data, actor=who.name))


@router.post("/{user_id}/password-link", status_code=status.HTTP_201_CREATED)
def issue_password_link(user_id: int, db: Db, who: Admin, settings: Config) -> PasswordLink:
    """A one-time link to set the user's password (first one, or a reset). The token is in this answer only."""
    with db.write() as session:
        token, expires_at = service.issue_password_link(session, user_id, settings, actor=who.name)
    return PasswordLink(token=token, url=service.password_link_url(settings, token), expires_at=expires_at)
