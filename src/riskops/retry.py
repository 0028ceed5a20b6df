"""When to try again: the one retry schedule of everything the service sends (webhooks, e-mail)."""

from datetime import timedelta

# Wait before attempt 2, 3, ...: about a day in all. Attempt 8 is the last.
SCHEDULE = (
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), timedelta(hours=10), timedelta(hours=10),
)  # fmt: skip


def wait_after(attempts: int) -> timedelta | None:
    """How long to wait after `attempts` failed attempts; None when that was the last one."""
    return SCHEDULE[attempts - 1] if attempts <= len(SCHEDULE) else None
