"""An iCalendar feed (RFC 5545) of review dates and acceptance expiries, for calendar subscriptions, and the
feed tokens that open it: a calendar app keeps its URL, token and all, so the token opens this feed only."""

import secrets
from datetime import timedelta

from sqlmodel import Session, col, select, update

from riskops import audit
from riskops.apikeys.service import Principal, hash_secret
from riskops.clock import now as utcnow
from riskops.db import get_row
from riskops.errors import Conflict
from riskops.reviews.models import FeedToken, FeedTokenCreate
from riskops.risks.models import Risk, RiskStatus, Treatment

TOKEN_PREFIX = "rkf_"
FEED_PATH = "/api/v1/register/calendar.ics"
_USE_RECORDED_EVERY = timedelta(minutes=1)

# ---- tokens ----


def create_token(session: Session, data: FeedTokenCreate, who: Principal) -> tuple[FeedToken, str]:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = FeedToken(
        name=data.name, owner=data.owner, token_hash=hash_secret(secret), prefix=secret[:10], created_by=who.name
    )
    session.add(token)
    session.flush()
    audit.service.record(
        session, entity_type="feed_token", entity_id=token.id, action="created", actor=who.name,
        changes={"name": {"old": None, "new": token.name}, "owner": {"old": None, "new": token.owner}},
    )  # fmt: skip
    return token, secret


def list_tokens(session: Session) -> list[FeedToken]:
    return list(session.exec(select(FeedToken).order_by(col(FeedToken.id))))


def revoke_token(session: Session, token_id: int, who: Principal) -> FeedToken:
    token = get_row(session, FeedToken, token_id, "Feed token", with_for_update=True)
    if token.revoked_at is not None:
        raise Conflict(f"Feed token {token_id} is already revoked.")
    token.revoked_at = utcnow()
    session.add(token)
    audit.service.record(
        session, entity_type="feed_token", entity_id=token_id, action="revoked", actor=who.name,
        changes={"revoked_at": {"old": None, "new": token.revoked_at.isoformat()}},
    )  # fmt: skip
    return token


def active_token(session: Session, secret: str) -> FeedToken | None:
    return session.exec(
        select(FeedToken).where(FeedToken.token_hash == hash_secret(secret), col(FeedToken.revoked_at).is_(None))
    ).first()


def use_is_due(token: FeedToken) -> bool:
    """Whether this use should be noted: at most once a minute, so that polling calendars do not write each time."""
    return token.last_used_at is None or utcnow() - token.last_used_at >= _USE_RECORDED_EVERY


def record_use(session: Session, token_id: int) -> None:
    session.exec(update(FeedToken).where(col(FeedToken.id) == token_id).values(last_used_at=utcnow()))


# ---- the feed ----


def _text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> list[str]:
    """Lines of at most 75 octets; continuation lines start with a space (RFC 5545 3.1)."""
    out: list[str] = []
    current = ""
    for char in line:
        if len((current + char).encode()) > (75 if not out else 74):
            out.append(current)
            current = ""
        current += char
    return [*out, current]


def feed(session: Session, owner: str | None) -> str:
    query = select(Risk).where(Risk.status == RiskStatus.open).order_by(col(Risk.id))
    if owner is not None:
        query = query.where(Risk.owner == owner)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//riskops//risk reviews//EN", "CALSCALE:GREGORIAN",
             "X-WR-CALNAME:" + _text(f"riskops reviews{' - ' + owner if owner else ''}")]  # fmt: skip
    for risk in session.exec(query):
        dates = [("review", f"Review {risk.reference}: {risk.title}", risk.next_review_at)]
        if risk.treatment == Treatment.accept and risk.acceptance_expires_at is not None:
            dates.append(("acceptance", f"Acceptance of {risk.reference} expires", risk.acceptance_expires_at))
        for kind, summary, when in dates:
            day = when.strftime("%Y%m%d")
            lines += [
                "BEGIN:VEVENT", f"UID:{kind}-{risk.id}-{day}@riskops", f"DTSTAMP:{stamp}",
                f"DTSTART;VALUE=DATE:{day}", "SUMMARY:" + _text(summary),
                "DESCRIPTION:" + _text(f"{risk.reference} ({risk.level}), owner {risk.owner}"), "END:VEVENT",
            ]  # fmt: skip
    lines.append("END:VCALENDAR")
    return "".join(part + "\r\n" for line in lines for part in _fold(line))
