from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import EmailStr, field_validator
from sqlalchemy import String
from sqlmodel import Field, SQLModel

from riskops.apikeys.models import Role
from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key

Language = Literal["en", "zh-CN"]
# An address is the "who" of the history (audit_entry.actor holds 200 characters).
EMAIL_MAX = 200
# Bounded both ways: short ones are guessable, and argon2 over megabytes of input is a denial of service.
PASSWORD_MIN, PASSWORD_MAX = 12, 256
DISPLAY_NAME_MAX = 100


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"'{value}' is not an IANA time zone, e.g. Europe/Paris") from exc
    return value


class UserBase(SQLModel):
    display_name: str = Field(min_length=1, max_length=DISPLAY_NAME_MAX)
    role: Role = Field(sa_type=String(16))
    language: Language = Field(default="en", sa_type=String(8))
    time_zone: str = Field(default="UTC", max_length=64)

    _valid_zone = field_validator("time_zone")(_zone)


class User(UserBase, table=True):
    __tablename__ = "app_user"

    id: int = primary_key()
    # Stored lower-cased, so the unique index makes e-mail addresses unique whatever their case.
    email: str = Field(max_length=EMAIL_MAX, unique=True)
    active: bool = True
    password_hash: str | None = Field(default=None, max_length=255)
    # Failed sign-ins in the current window, kept here so that every instance counts the same.
    failed_sign_ins: int = 0
    first_failure_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UserCreate(UserBase):
    model_config = {"extra": "forbid"}

    email: EmailStr = Field(schema_extra={"json_schema_extra": {"maxLength": EMAIL_MAX}})

    @field_validator("email", mode="before")
    @classmethod
    def _short_enough(cls, value: object) -> object:
        if isinstance(value, str) and len(value.strip()) > EMAIL_MAX:
            raise ValueError(f"at most {EMAIL_MAX} characters")
        return value

    display_name: str = Field(default="", max_length=DISPLAY_NAME_MAX)  # blank: the e-mail's local part


class UserUpdate(SQLModel):
    model_config = {"extra": "forbid"}

    display_name: str | None = Field(default=None, min_length=1, max_length=DISPLAY_NAME_MAX)
    role: Role | None = None
    active: bool | None = None
    language: Language | None = None
    time_zone: str | None = Field(default=None, max_length=64)

    @field_validator("time_zone")
    @classmethod
    def _valid_zone(cls, value: str | None) -> str | None:
        return None if value is None else _zone(value)


class UserPublic(UserBase):
    id: int
    email: str
    active: bool
    has_password: bool
    created_at: datetime
    updated_at: datetime


class PasswordLink(SQLModel):
    token: str = Field(description="The one-time token: shown this once; only its hash is stored.")
    url: str = Field(description="The page that takes the token and the new password.")
    expires_at: datetime


class PasswordToken(SQLModel, table=True):
    """A one-time set-password token (from `riskops user create --link` or an admin's reset)."""

    __tablename__ = "password_token"

    id: int = primary_key()
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds the token, this row its hash; deleting the row signs it out."""

    __tablename__ = "user_session"

    id: int = primary_key()
    token_hash: str = Field(max_length=64, unique=True)
    csrf_token: str = Field(max_length=64)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
