from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key


class Role(StrEnum):
    read = "read"
    write = "write"
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class ApiKeyBase(SQLModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role = Field(sa_type=String(16))


class ApiKey(ApiKeyBase, table=True):
    __tablename__ = "api_key"

    id: int = primary_key()
    # Keys are 256 random bits, so a fast SHA-256 is safe and keeps per-request auth cheap.
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # An e-mail address when a signed-in user made it (audit_entry.actor's 200 characters).
    created_by: str = Field(max_length=200)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A user's own key (riskops.users): it works only while they are active and their role reaches the key's.
    user_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    # Noted at most once a minute, when the key is looked up in the database (not on every cached use).
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiKeyCreate(ApiKeyBase):
    model_config = {"extra": "forbid"}


class ApiKeyPublic(ApiKeyBase):
    id: int
    prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    user_id: int | None = Field(description="The user the key belongs to; null for a service key (made by an admin).")
    owner: str | None = Field(description="That user's e-mail address.")
    last_used_at: datetime | None = Field(
        description="When it was last seen, to within a minute and RISKOPS_AUTH_CACHE_SECONDS; null if never."
    )


class ApiKeyCreated(ApiKeyPublic):
    secret: str = Field(description="The key itself. Shown this once; only its hash is stored.")
