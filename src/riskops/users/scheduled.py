"""The users' timed work: ended sessions and old set-password links are deleted, once an hour."""

from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import Database
from riskops.notices import service as notices
from riskops.notices.service import PeriodicJob
from riskops.users import service

SESSION_SWEEP = "session-sweep"


def sweep_sessions(database: Database, settings: Settings) -> bool:
    """Once per hour whatever the number of instances (the claim is a row in the same transaction)."""
    with database.write() as session:
        if not notices.claim_period(session, SESSION_SWEEP, utcnow().strftime("%Y-%m-%dT%H")):
            return False
        service.delete_ended(session, settings)
        return True


PERIODIC_JOBS: dict[str, PeriodicJob] = {SESSION_SWEEP: sweep_sessions}
