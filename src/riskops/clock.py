"""The one clock every rule reads, so that tests can move time instead of waiting for it."""

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_fixed: datetime | None = None


def now() -> datetime:
    return _fixed if _fixed is not None else datetime.now(UTC)


def set_fixed(moment: datetime | None) -> None:
    """Freeze time at `moment` (timezone-aware), or release it with None. For tests only."""
    global _fixed
    if moment is not None and moment.tzinfo is None:
        raise ValueError("the clock runs in UTC; give an aware datetime")
    _fixed = moment


# Instants a client may give: far enough from the calendar's ends that a reminder before or a period after
# (days, quarters) stays representable.
EARLIEST_YEAR, LATEST_YEAR = 1900, 8999


def within_calendar(value: datetime) -> datetime:
    """A client's instant, in UTC: it must carry a time zone and lie in years 1900-8999."""
    if value.tzinfo is None:
        raise ValueError("must carry a timezone, e.g. 2027-03-31T00:00:00Z")
    if not EARLIEST_YEAR < value.year < LATEST_YEAR:  # strict: an offset may move it across a year's end
        raise ValueError(f"must lie between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value.astimezone(UTC)


# A number, bare or as text ("+0.0", "1e9"): pydantic would read it as seconds since 1970.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _written(value: object) -> object:
    """An instant is written as an ISO 8601 date and time: a number is not taken for seconds since 1970."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("must be an ISO 8601 date and time, e.g. 2027-03-31T00:00:00Z")
    return value


Moment = Annotated[datetime, BeforeValidator(_written), AfterValidator(within_calendar)]
