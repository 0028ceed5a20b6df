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
    created_by: str = Field(max_length=100)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiKeyCreate(ApiKeyBase):
    model_config = {"extra": "forbid"}


class ApiKeyPublic(ApiKeyBase):
    id: int
    prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    secret: str = Field(description="The key itself. Shown this once; only its hash is stored.")
