"""Idempotency-Key: a retried request gets the first answer again instead of doing the work twice."""

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Header
from pydantic import BaseModel
from sqlalchemy import JSON, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.db import Database, UTCDateTime, primary_key
from riskops.errors import Unprocessable, field_error

# The request header, as routes declare it.
IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="Retries with the same key get the first answer; no second incident."),
]


class IdempotentRequest(SQLModel, table=True):
    """The first answer to a request sent with an Idempotency-Key, replayed for its retries."""

    __tablename__ = "idempotent_request"
    __table_args__ = (UniqueConstraint("principal_id", "key"),)

    id: int = primary_key()
    principal_id: int
    key: str = Field(max_length=200)
    fingerprint: str = Field(max_length=64)
    response: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


Done = TypeVar("Done")


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    canonical = json.dumps([method, path, body.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_once(
    db: Database, who: Principal, key: str | None, request_fingerprint: str, work: Callable[[Session], Done],
    answer: Callable[[Session, Done], bytes],
) -> tuple[bool, bytes]:  # fmt: skip
    """(replayed, body): the JSON `answer` gives of what `work` did in its unit of work, or the stored one for a
    retry.

    Without a key the answer is read after the commit, once the write lock is let go. With one, it is read in the
    work's transaction and stored there, and a unique index on (key owner, key) makes a concurrent duplicate fail
    and roll back whole: the work happens once, and every retry gets exactly the first answer.
    """
    if key is None:
        with db.write() as session:
            done = work(session)
        with db.read() as session:
            return False, answer(session, done)
    try:
        with db.write() as session:
            prior = _find(session, who, key)
            if prior is not None:
                return True, _replay(prior, request_fingerprint)
            body = answer(session, work(session))
            session.add(
                IdempotentRequest(
                    principal_id=who.key_id, key=key, fingerprint=request_fingerprint, response=orjson.loads(body)
                )
            )
            session.flush()
            return False, body
    except IntegrityError:
        with db.read() as session:
            prior = _find(session, who, key)
        if prior is None:
            raise
        return True, _replay(prior, request_fingerprint)


def _find(session: Session, who: Principal, key: str) -> IdempotentRequest | None:
    return session.exec(
        select(IdempotentRequest).where(IdempotentRequest.principal_id == who.key_id, IdempotentRequest.key == key)
    ).first()


def _replay(prior: IdempotentRequest, request_fingerprint: str) -> bytes:
    if prior.fingerprint != request_fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was already used for a different request; use a new key for a new request.",
            errors=[field_error(("header", "idempotency-key"), "reused with a different request")],
        )
    return orjson.dumps(prior.response)  # the stored JSON keeps the first answer's order
