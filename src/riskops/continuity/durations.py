"""Durations as a business impact analysis writes them: minutes, 4h / 1d / 1w (combined as 1d12h), or ISO 8601
(PT4H, P1D, P1W). Months and years are refused: their length in minutes depends on the calendar."""

import re
from typing import Any

from pydantic import WithJsonSchema

MAX_MINUTES = 366 * 24 * 60  # a year, leap or not: beyond it a business impact analysis does not plan
_UNITS = (("w", 7 * 24 * 60), ("d", 24 * 60), ("h", 60), ("m", 1))
_SHORT = r"^([0-9]{1,6}w)?([0-9]{1,6}d)?([0-9]{1,6}h)?([0-9]{1,6}m)?$"
_ISO = r"^P([0-9]{1,6}W)?([0-9]{1,6}D)?(?:T([0-9]{1,6}H)?([0-9]{1,6}M)?)?$"
_FORMS = tuple(re.compile(pattern) for pattern in (_SHORT, _ISO))
HOW = "minutes as a number, or text: 4h, 1d, 1w, 1d12h, 30m, or ISO 8601 such as PT4H, P1D, P1W"


def minutes(value: Any) -> Any:
    """Text written as a duration, in minutes; anything else is left for the integer check to judge."""
    if not isinstance(value, str):
        return value
    for form in _FORMS:
        match = form.fullmatch(value)
        if match and any(match.groups()) and not value.endswith("T"):
            return sum(int(part[:-1]) * unit for part, (_, unit) in zip(match.groups(), _UNITS, strict=True) if part)
    raise ValueError(f"not a duration: {HOW}")


def written(total: int) -> str:
    """Minutes the way people write them: 240 -> 4h, 2160 -> 1d12h, 10080 -> 1w, 0 -> 0m."""
    parts = []
    for letter, unit in _UNITS:
        count, total = divmod(total, unit)
        if count:
            parts.append(f"{count}{letter}")
    return "".join(parts) or "0m"


def schema(least: int, description: str) -> WithJsonSchema:
    """What a duration field accepts, for the OpenAPI document: minutes from `least` to a year, or text."""
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": least, "maximum": MAX_MINUTES},
                {"type": "string", "maxLength": 40, "pattern": f"{_SHORT}|{_ISO}"},
            ],
            "description": f"{description}: {HOW}; at most a year.",
        },
        mode="validation",
    )
