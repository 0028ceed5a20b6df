"""Bring a database to a usable state: schema at head, a default matrix, a first admin key."""

from sqlalchemy import Engine
from sqlmodel import Session

from riskops import migrations
from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.matrices import service as matrices


def prepare_database(engine: Engine) -> None:
    """Migrate to head and install the default matrix; safe to run from several instances at once."""
    migrations.upgrade(engine)
    with migrations.exclusive(engine) as conn, Session(bind=conn) as session:
        matrices.ensure_default(session)
        session.commit()


def first_admin_key(engine: Engine) -> str | None:
    """On a register with no usable key, create an admin key and return its secret (else None)."""
    with migrations.exclusive(engine) as conn, Session(bind=conn) as session:
        if apikeys.has_active_keys(session):
            return None
        _, secret = apikeys.create_key(session, ApiKeyCreate(name="first-admin", role=Role.admin), created_by="system")
        session.commit()
        return secret
