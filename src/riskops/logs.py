"""Log lines of `riskops serve` and `riskops worker`: one format, the request id on each, no secret from a URL."""

import logging
import re
from contextvars import ContextVar
from urllib.parse import unquote_plus

# Set by the request guard for the time of one request; every line logged meanwhile carries it.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

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


def configure(level: str) -> None:
    """Everything, uvicorn's access log included, goes through one stderr handler in this format."""
    handler = logging.StreamHandler()
    handler.setFormatter(LineFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    if level != "debug":  # two lines for every scheduler tick would bury everything else
        logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
