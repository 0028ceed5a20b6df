"""Bring a database to a usable state: schema at head, a default matrix, a first admin key."""

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from riskops import migrations
from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.config import Settings
from riskops.playbooks import loader
from riskops.playbooks import service as playbooks
from riskops.playbooks.loader import LoadedPlaybook
from riskops.risks.matrices import service as matrices


def prepare_database(engine: Engine) -> None:
    """Migrate to head and install the default matrix; safe to run from several instances at once."""
    migrations.upgrade(engine)
    with migrations.exclusive(engine) as conn, Session(bind=conn) as session:
        matrices.ensure_default(session)
        session.commit()


def sync_library(engine: Engine, settings: Settings) -> list[str]:
    """`riskops serve`'s playbooks: the shipped library, extended or replaced by RISKOPS_PLAYBOOKS_DIR's files."""
    return _publish(engine, loader.load_library(settings.playbooks_dir, settings.playbooks_mode))


def sync_playbooks(engine: Engine, directory: Path) -> list[str]:
    """The playbook files of `directory` alone."""
    return _publish(engine, loader.load_directory(directory))


def _publish(engine: Engine, loaded: list[LoadedPlaybook]) -> list[str]:
    """Publish the new versions (`slug vN`) of files validated whole: any problem raised PlaybookFilesInvalid
    before, and a version conflict raises it here, loading nothing."""
    with migrations.exclusive(engine) as conn, Session(bind=conn) as session:
        created = [f"{v.slug} v{v.version}" for v in playbooks.sync(session, loaded)]
        session.commit()
    return created


def first_admin_key(engine: Engine) -> str | None:
    """On a register with no usable key, create an admin key and return its secret (else None)."""
    with migrations.exclusive(engine) as conn, Session(bind=conn) as session:
        if apikeys.has_active_keys(session):
            return None
        _, secret = apikeys.create_key(session, ApiKeyCreate(name="first-admin", role=Role.admin), created_by="system")
        session.commit()
        return secret
