import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from tests.conftest import Keys

# Two writers and two admins besides the fixture's keys: four eyes needs people to tell apart.
PEOPLE = {"ann": Role.write, "bob": Role.write, "carol": Role.admin, "dave": Role.admin}


@pytest.fixture
def people(engine: Engine, keys: Keys) -> dict[str, dict[str, str]]:
    """Each person's request headers (an API key of their own each)."""
    headers = {}
    with Session(engine) as session:
        for name, role in PEOPLE.items():
            _, secret = apikeys.create_key(session, ApiKeyCreate(name=name, role=role), created_by="test")
            headers[name] = {"Authorization": f"Bearer {secret}"}
        session.commit()
    return headers
