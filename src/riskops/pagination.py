"""Opaque keyset cursors and the page shape every list endpoint returns."""

import base64
import json
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from riskops.errors import Unprocessable, field_error

T = TypeVar("T")


class HasId(Protocol):
    @property
    def id(self) -> int | None: ...


R = TypeVar("R", bound=HasId)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list):
            raise ValueError("not a list")
        return values
    except (ValueError, TypeError) as exc:
        raise Unprocessable(
            "The cursor is malformed; pass back next_cursor exactly as it was returned.",
            errors=[field_error(("query", "cursor"), "malformed cursor")],
        ) from exc


def malformed_cursor() -> Unprocessable:
    return Unprocessable(
        "The cursor does not belong to this listing; pass back next_cursor with the same sort.",
        errors=[field_error(("query", "cursor"), "cursor does not match the sort order")],
    )


def decode_id_cursor(cursor: str | None) -> int | None:
    """The id a listing ordered by id resumes after, or None for the first page."""
    if cursor is None:
        return None
    values = decode_cursor(cursor)
    if len(values) != 1 or not isinstance(values[0], int):
        raise malformed_cursor()
    return values[0]


def id_page(rows: list[R], limit: int) -> tuple[list[R], str | None]:
    """Cut rows fetched with limit + 1 to a page, with a cursor when there is more."""
    if len(rows) > limit:
        return rows[:limit], encode_cursor([rows[limit - 1].id])
    return rows, None
