"""An iCalendar feed (RFC 5545) of review dates and acceptance expiries, for calendar subscriptions."""

from sqlmodel import Session, col, select

from riskops.clock import now as utcnow
from riskops.risks.models import Risk, RiskStatus, Treatment


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
