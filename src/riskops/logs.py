"""Log lines of `riskops serve` and `riskops worker`: text or JSON, the request id on each, no secret from a URL."""

import logging
import re
from contextvars import ContextVar
from typing import Any, Literal
from urllib.parse import unquote_plus

from pythonjsonlogger.json import JsonFormatter

# Set by the request guard for the time of one request; every line logged meanwhile carries it.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# One line per request, written by the request guard (uvicorn's own access log is off).
ACCESS = logging.getLogger("riskops.access")
# Answers to probes and scrapes that went well: at debug, so that they do not bury everything else.
_ROUTINE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

# A query parameter in any URL (access log, outgoing calls, error messages), and the names whose values are secret:
# token, key, secret, password and routing_key, alone or at the end of a longer name (api_key, access_token).
_QUERY_PARAMETER = re.compile(r"(?<=[?&])([^=&\s\"'#?]+)=([^&\s\"'#]*)")
_SECRET_NAME = re.compile(r"(?:.*[_.-])?(?:token|key|secret|password)", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the values of secret query parameters replaced by `***` (names compared decoded, any case)."""

    def mask(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"{name}=***" if _SECRET_NAME.fullmatch(unquote_plus(name)) else match.group(0)

    return _QUERY_PARAMETER.sub(mask, text)


class LineFormatter(logging.Formatter):
    """The request id on every line, and the whole formatted line (traceback included) redacted, whoever logged it."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return redact(super().format(record))


class JsonLineFormatter(JsonFormatter):
    """One JSON object a line: time, level, logger, request id, message and the record's extra fields (the access
    line's method, path, status, duration_ms); every string value redacted."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(request_id)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"}, timestamp="time",
        )  # fmt: skip

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        super().add_fields(log_data, record, message_dict)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {name: redact(value) if isinstance(value, str) else value for name, value in log_data.items()}


def log_request(client: str, method: str, path: str, query: bytes, status: int, seconds: float) -> None:
    """The access line of one request, its query as sent (the formatters redact it)."""
    level = logging.DEBUG if status < 400 and path in _ROUTINE_PATHS else logging.INFO
    if not ACCESS.isEnabledFor(level):
        return
    target = f"{path}?{query.decode('latin-1')}" if query else path
    milliseconds = round(seconds * 1000, 1)
    fields = {"client": client, "method": method, "path": target, "status": status, "duration_ms": milliseconds}
    ACCESS.log(level, '%s "%s %s" %d %.1fms', client, method, target, status, milliseconds, extra=fields)


def configure(level: str, form: Literal["text", "json"] = "text") -> None:
    """Everything (uvicorn's, APScheduler's, ours) goes through one stderr handler, as text or JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLineFormatter() if form == "json" else LineFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.captureWarnings(True)  # a library's warning is a line in the same format, not stray text
    quiet("apscheduler")  # two lines for every scheduler tick would bury everything else


def quiet(logger: str) -> None:
    """Only warnings and errors from `logger`, unless everything is logged (debug)."""
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger(logger).setLevel(max(logging.WARNING, logging.getLogger().level))
