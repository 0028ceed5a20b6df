"""The outermost ASGI layer: a request id for every request, body limits and NUL refusal before anything else
reads the request, a 500 problem for an unhandled error on a connection that stays open, and once answered,
the request's access line and its measurement (by route template)."""

import json
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from riskops import errors, logs
from riskops.config import Settings

log = logging.getLogger(__name__)

# An incoming id is kept when it is short and made of characters that are safe in headers and log lines.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_IMPORT_PATH = "/api/v1/risks/import"
_INBOUND_PREFIX = "/api/v1/inbound/"
# The route label of a request no route took: unknown paths, and bodies refused before routing.
UNMATCHED = "unmatched"
# Nginx's word for a request whose client left before any answer.
CLIENT_CLOSED = 499

# Called once a request is answered: method, route template (never the raw path), status, seconds.
Observer = Callable[[str, str, int, float], None]


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        path_templates: Callable[[], Iterable[str]],
        observe: Observer | None = None,
    ):
        self.app = app
        self.settings = settings
        self.path_templates = path_templates  # to name the path parameter that holds a NUL
        self.observe = observe

    def body_limit(self, scope: Scope) -> int:
        path = scope["path"].rstrip("/")
        if scope["method"] == "POST" and path == _IMPORT_PATH:
            return self.settings.import_max_bytes
        if path.startswith(_INBOUND_PREFIX):
            return self.settings.inbound_max_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        query = scope["query_string"]  # as sent, for the access line (_guarded drops blank parameters)
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        token = logs.request_id.set(request_id)
        answer = _Answer(send, request_id)
        try:
            await self._guarded(scope, receive, answer.send)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not answer.started:
                await errors.internal_error(scope["path"], request_id)(scope, receive, answer.send)
            elif not answer.complete:
                raise  # half an answer cannot be mended; uvicorn closes the connection
            # Otherwise the app's own handler has answered 500; swallowing the error keeps the connection open.
        finally:
            seconds = time.perf_counter() - started
            status = answer.status or CLIENT_CLOSED
            if self.observe is not None:
                route = scope.get("route")  # set by the router on the scope it was handed: this very dict
                self.observe(scope["method"], getattr(route, "path", UNMATCHED), status, seconds)
            client = scope.get("client")
            logs.log_request(client[0] if client else "-", scope["method"], scope["path"], query, status, seconds)
            logs.request_id.reset(token)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["query_string"] = _without_blanks(scope["query_string"])
        refusal = self._nul_in_parameters(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        limit = self.body_limit(scope)
        declared = _content_length(scope)
        try:
            chunks = None if declared is not None and declared > limit else await _read_body(receive, limit)
        except ClientDisconnect:
            return  # a partial body is never handed on, and there is nobody to answer
        if chunks is None:
            await _too_large(scope, limit)(scope, receive, send)
            return
        if not _is_multipart(scope):  # uploaded files may hold any byte
            chunks = [b"".join(chunks)]
            refusal = _nul_in_json(scope, chunks[0])
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, _replay(chunks, receive), send)

    def _nul_in_parameters(self, scope: Scope) -> JSONResponse | None:
        query = scope["query_string"].decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return _nul_refused(scope, ("query", _printable(name)))
        if "\x00" in scope["path"]:
            return _nul_refused(scope, ("path", *self._path_parameter(scope)))
        return None

    def _path_parameter(self, scope: Scope) -> list[str]:
        """The name of the path parameter holding NUL, from the documented path templates (a rare path)."""
        for template in self.path_templates():
            names = re.findall(r"{([^}]+)}", template)
            literals = re.split(r"{[^}]+}", template)
            pattern = "([^/]*)".join(re.escape(literal) for literal in literals)
            match = re.fullmatch(pattern, scope["path"])
            if match:
                return [name for name, value in zip(names, match.groups(), strict=True) if "\x00" in value][:1]
        return []


class _Answer:
    """The response as it is sent: its status, whether it has started and ended, with the request id added to its
    headers."""

    def __init__(self, send: Send, request_id: str):
        self._send = send
        self._header = (b"x-request-id", request_id.encode())
        self.started = self.complete = False
        self.status = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            message = {**message, "headers": [*message.get("headers", []), self._header]}
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True
        await self._send(message)


def _without_blanks(query: bytes) -> bytes:
    """`?cursor=&level=high` is `?level=high`: an empty parameter says the same as none (documented in the
    OpenAPI document as allowEmptyValue)."""
    return b"&".join(part for part in query.split(b"&") if part.partition(b"=")[2])


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = str(value.decode("latin-1"))
            if _SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


def _is_multipart(scope: Scope) -> bool:
    return (_header(scope, b"content-type") or "").strip().lower().startswith("multipart/")


async def _read_body(receive: Receive, limit: int) -> list[bytes] | None:
    """The body's chunks, or None as soon as it passes `limit` (the chunk that passes it is not kept)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks


def _replay(chunks: list[bytes], receive: Receive) -> Receive:
    """The body read ahead, then the server's own messages (a disconnect) for whoever listens on."""
    pending = deque(chunks or [b""])

    async def replay() -> Message:
        if pending:
            body = pending.popleft()
            return {"type": "http.request", "body": body, "more_body": bool(pending)}
        return await receive()

    return replay


def _too_large(scope: Scope, limit: int) -> JSONResponse:
    # Closing stops the client's upload instead of reading the rest of it for nothing.
    return errors.problem(
        413, "payload-too-large", f"Request bodies here are limited to {limit} bytes.", scope["path"],
        request_id=scope["state"]["request_id"], headers={"Connection": "close"},
    )  # fmt: skip


def _nul_in_json(scope: Scope, body: bytes) -> JSONResponse | None:
    """A JSON body with a string (or key) holding NUL; only parsed here when it could have one (rare)."""
    if b"\\u0000" not in body and b"\x00" not in body:  # an escape, or a UTF-16/32 body
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the endpoint says what it makes of it
    loc = _first_nul(document)
    return None if loc is None else _nul_refused(scope, ("body", *loc))


def _first_nul(document: Any) -> list[str | int] | None:
    """The path to a string or key holding NUL, depth first (without recursion: any depth json.loads took)."""
    stack: list[tuple[list[str | int], Any]] = [([], document)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return loc
        elif isinstance(value, dict):
            for key in value:
                if "\x00" in key:
                    return [*loc, _printable(key)]
            stack.extend(([*loc, key], item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(([*loc, i], item) for i, item in reversed(list(enumerate(value))))
    return None


def _nul_refused(scope: Scope, loc: tuple[str | int, ...]) -> JSONResponse:
    # PostgreSQL cannot store NUL in text (and would fail with a 500); SQLite would store it. Neither is wanted.
    error = errors.field_error(loc, "must not contain NUL (\\u0000) characters")
    return errors.problem(
        422, "validation-error", f"Invalid request: {error['field']}: {error['message']}", scope["path"],
        errors=[error], request_id=scope["state"]["request_id"],
    )  # fmt: skip


def _printable(text: str) -> str:
    return text.replace("\x00", "\\u0000")
