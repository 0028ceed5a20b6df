"""The register's field types: names matched up to case and spaces, tags, and expiries given as a date alone."""

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from riskops.clock import Moment

Tag = str


def _trimmed(value: str) -> str:
    trimmed = value.strip()
    if not trimmed:
        raise ValueError("must not be blank")
    return trimmed


# Owners and categories are matched up to case; surrounding spaces would make two spellings of one name. The
# length limits of the field apply to the text as sent (what the OpenAPI document states), then it is trimmed.
Name = Annotated[str, AfterValidator(_trimmed)]

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def date_only(value: Any) -> date | None:
    """The calendar date when `value` is a date without a time of day (2027-03-31 or a date); else None."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None  # not a real date: the datetime parser reports it
    return None


def through_the_day(value: Any) -> Any:
    """An expiry given as a date alone lasts through that day: to its last microsecond, UTC."""
    day = date_only(value)
    return value if day is None else datetime.combine(day, time.max, UTC)


Expiry = Annotated[Moment, BeforeValidator(through_the_day)]


def normalise_tags(tags: list[str]) -> list[str]:
    cleaned = sorted({t.strip().lower() for t in tags if t.strip()})
    for tag in cleaned:
        if len(tag) > 50:
            raise ValueError(f"tag '{tag[:20]}...' is longer than 50 characters")
    return cleaned


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def written_date(value: Any) -> Any:
    """A date is written as YYYY-MM-DD: a number is not taken for seconds since 1970."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("must be an ISO 8601 date, e.g. 2027-03-31")
    return value


Day = Annotated[date, BeforeValidator(written_date)]
