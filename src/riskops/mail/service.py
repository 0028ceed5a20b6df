"""E-mail over SMTP: queued as rows, claimed with a lease, retried like webhooks."""

import smtplib
import ssl
from datetime import timedelta
from email.message import EmailMessage as MimeMessage

from sqlmodel import Session, col, select

from riskops import retry
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import Database
from riskops.mail.models import EmailMessage


def queue(session: Session, to: str, subject: str, body: str) -> None:
    subject = " ".join(subject.split())  # a header is one line, whatever a title contains
    session.add(EmailMessage(to_address=to, subject=subject[:300], body=body))


def looks_like_address(value: str) -> bool:
    name, _, domain = value.strip().rpartition("@")
    return bool(name) and "." in domain and " " not in value.strip()


def send_due(database: Database, settings: Settings, limit: int = 50) -> int:
    """Send what is due; returns how many were sent. Without RISKOPS_SMTP_HOST mail stays queued."""
    if not settings.smtp_host:
        return 0
    now = utcnow()
    with database.write() as session:
        query = (
            select(EmailMessage)
            .where(
                EmailMessage.status == "pending",
                col(EmailMessage.next_attempt_at) <= now,
                (col(EmailMessage.lease_until).is_(None)) | (col(EmailMessage.lease_until) < now),
            )
            .order_by(col(EmailMessage.id))
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        batch = list(session.exec(query))
        for message in batch:
            message.lease_until = now + timedelta(minutes=5)
            session.add(message)
        jobs = [(m.id, m.to_address, m.subject, m.body) for m in batch]
    sent = 0
    for message_id, to, subject, body in jobs:
        error = _send(settings, to, subject, body)
        with database.write() as session:
            row = session.get(EmailMessage, message_id, with_for_update=True)
            assert row is not None
            message = row
            message.attempts += 1
            message.lease_until = None
            if error is None:
                message.status, message.sent_at = "sent", utcnow()
                sent += 1
            elif (wait := retry.wait_after(message.attempts)) is None:
                message.status, message.last_error = "failed", error
            else:
                message.last_error = error
                message.next_attempt_at = utcnow() + wait
            session.add(message)
    return sent


def _send(settings: Settings, to: str, subject: str, body: str) -> str | None:
    try:
        mime = MimeMessage()
        mime["From"], mime["To"], mime["Subject"] = settings.smtp_sender, to, subject
        mime.set_content(body)
        smtp_class = smtplib.SMTP_SSL if settings.smtp_tls == "ssl" else smtplib.SMTP
        with smtp_class(settings.smtp_host or "", settings.smtp_port, timeout=settings.webhook_timeout_seconds) as smtp:
            if settings.smtp_tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            smtp.send_message(mime)
    except (OSError, ValueError, smtplib.SMTPException) as exc:  # ValueError: a message that cannot be built
        return f"{type(exc).__name__}: {exc}"[:500]
    return None
