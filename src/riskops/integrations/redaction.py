"""Credentials taken out of alert bodies before they are stored: a stored PagerDuty `routing_key` is the
integration's token, and anyone who can read it could send alerts as the integration.

JSON bodies are masked field by field (and re-serialised only when something was masked); anything else,
such as a rejected body that is not JSON, by pattern.
"""

import json
import re
from typing import Any

MASK = "***"

# Field names that hold a credential, compared lower-case without separators: routing_key, token, access_token,
# Authorization, X-Api-Key, password, client_secret, ...
_SECRET_SUFFIXES = (
    "token", "secret", "password", "passwd", "apikey", "routingkey", "authorization", "credential", "credentials",
    "privatekey", "cookie",
)  # fmt: skip
_SECRET_NAMES = {"auth", "pwd"}
_NAME = r"[\w.-]*?(?:token|secret|password|passwd|api[_-]?key|routing[_-]?key|authorization|credentials?|private[_-]?key)|auth|pwd"  # noqa: E501
_PATTERNS = (
    # Our own secrets, wherever they appear: API keys, integration and feed tokens, webhook signing secrets.
    (re.compile(r"\b(?:rk[oikf]_[A-Za-z0-9_-]{8,}|whsec_[A-Za-z0-9+/=]{8,})"), MASK),
    # A quoted JSON-like pair in a body that is not JSON: "routing_key": "...".
    (re.compile(rf'(?i)("(?:{_NAME})"\s*:\s*)(?!"\*\*\*")(?:"(?:[^"\\]|\\.)*"?|[^\s,}}\]]+)'), rf'\1"{MASK}"'),
    # HTTP credentials: Authorization: Bearer ..., Basic ...
    (re.compile(r"(?i)\b(bearer\s+)(?!\*\*\*)[A-Za-z0-9._~+/=-]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)\b(basic\s+)[A-Za-z0-9+/]{8,}={0,2}(?![\w+/=])"), rf"\1{MASK}"),
    # name=value and name: value, as in a URL's ?token=... or a header line.
    (re.compile(rf"(?i)(?<![\w-])((?:{_NAME})\s*[:=]\s*)(?!\*\*\*)[^\s&#\"',;}}\]]+"), rf"\1{MASK}"),
)


def secret_name(name: str) -> bool:
    plain = re.sub(r"[\W_]", "", name.lower())
    return plain in _SECRET_NAMES or plain.endswith(_SECRET_SUFFIXES)


def mask_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _mask_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: MASK if secret_name(str(k)) and v not in (None, "", MASK) else _mask_value(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_value(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def masked_body(body: bytes) -> str:
    """The body as text, credentials replaced by "***"; byte for byte as received when it held none."""
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return mask_text(text)
    masked = _mask_value(parsed)
    return text if masked == parsed else json.dumps(masked, ensure_ascii=False)
