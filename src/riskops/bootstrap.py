"""Bring a database to a usable state: schema at head, a default matrix, a first admin key."""

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from riskops import migrations
from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.playbooks import loader
from riskops.playbooks import service as playbooks
from riskops.playbooks.loader import FileProblem, PlaybookFilesInvalid
from riskops.risks.matrices import service as matrices


def prepare_database(engine: Engine) -> None:
    """Migrate to head and install the default matrix; safe to run from several instances at once."""
    migrations.upgrade(engine)
    with migrations.exclusive(engine) as conn, Session(bind=conn) as session:
        matrices.ensure_default(session)
        session.commit()


def sync_playbooks(engine: Engine, directory: Path) -> list[str]:
    """Validate every playbook file, then publish the new versions; raises PlaybookFilesInvalid, loading nothing."""
    if not directory.is_dir():
        raise PlaybookFilesInvalid([FileProblem(str(directory), "(directory)", "not found; set RISKOPS_PLAYBOOKS_DIR")])
    loaded = loader.load_paths([directory])
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
