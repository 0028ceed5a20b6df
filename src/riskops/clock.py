"""The one clock every rule reads, so that tests can move time instead of waiting for it."""

from datetime import UTC, datetime

_fixed: datetime | None = None


def now() -> datetime:
    return _fixed if _fixed is not None else datetime.now(UTC)


def set_fixed(moment: datetime | None) -> None:
    """Freeze time at `moment` (timezone-aware), or release it with None. For tests only."""
    global _fixed
    if moment is not None and moment.tzinfo is None:
        raise ValueError("the clock runs in UTC; give an aware datetime")
    _fixed = moment
