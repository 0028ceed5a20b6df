from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from babel.numbers import list_currencies
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PlaybooksMode = Literal["extend", "replace"]


class Settings(BaseSettings):
    """Every setting comes from a `RISKOPS_`-prefixed environment variable (or `.env`)."""

    model_config = SettingsConfigDict(env_prefix="RISKOPS_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./riskops.db"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # `json`: one JSON object a line, for a log pipeline; `text`: one readable line.
    log_format: Literal["text", "json"] = "text"
    # A bearer token for Prometheus to scrape /metrics with (a read API key works too); never logged or shown.
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    # The playbooks `riskops serve` syncs: those shipped with riskops plus this directory's (`extend`: a file here
    # wins over the shipped playbook with its id), or this directory's alone (`replace`).
    playbooks_dir: Path | None = None
    playbooks_mode: PlaybooksMode = "extend"
    # How long a verified API key is trusted without asking the database again (0 = always ask).
    auth_cache_seconds: float = 5.0
    # The web console at / (RISKOPS_CONSOLE=false: the API only; sessions and sign-in go with it).
    console: bool = True
    # The console's address as people reach it (https://risk.example.org): its links, and Secure session cookies.
    public_url: str = ""
    # Console sessions end after this long without a request (idle) and this long after sign-in (absolute).
    session_idle_minutes: int = Field(default=30, ge=1)
    session_absolute_hours: int = Field(default=12, ge=1)
    # This many failed sign-ins to one account within the window lock it for the window (counted in the database).
    sign_in_max_failures: int = Field(default=5, ge=1)
    sign_in_lockout_minutes: int = Field(default=15, ge=1)
    # A failed sign-in waits this long before its answer, on top of argon2's own cost (no worker thread is held).
    sign_in_failure_delay_seconds: float = Field(default=1.0, ge=0, le=10)
    # How long a one-time set-password link works.
    password_link_hours: int = Field(default=24, ge=1, le=24 * 30)
    # Quarterly reviews: the month the fiscal year starts (1 = calendar quarters).
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    # The time zone dates are shown to people in (the PDF report): an IANA name such as Europe/Paris.
    timezone: ZoneInfo = ZoneInfo("UTC")
    # Largest request body of any endpoint, enforced while it is read, before authentication (413 beyond);
    # the inbound and import endpoints have their own limits below.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Largest alert body the inbound endpoints accept (413 beyond).
    inbound_max_bytes: int = 1024 * 1024
    # Largest upload accepted by the import endpoint, what it may unpack to (an XLSX is a zip), and its rows.
    import_max_bytes: int = 10 * 1024 * 1024
    import_max_uncompressed_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    import_max_rows: int = Field(default=50_000, ge=1)

    # The scheduler: how often due work is looked for, and whether `serve` runs it (`riskops worker` always does).
    scheduler_enabled: bool = True
    scheduler_tick_seconds: float = Field(default=5.0, gt=0)
    # Notices before a date: review reminders, acceptance expiry, step deadlines, recovery-time breach.
    review_reminder_days: int = Field(default=14, ge=0)
    acceptance_warning_days: int = Field(default=30, ge=0)
    # The longest an acceptance may last from its request (or its recording): it is extended through approval.
    acceptance_max_days: int = Field(default=365, ge=1, le=3660)
    step_reminder_minutes: int = Field(default=10, ge=0)
    breach_warning_minutes: int = Field(default=30, ge=0)
    # A treatment action still open this many days after it fell overdue is escalated to the risk's owner too.
    treatment_escalation_days: int = Field(default=7, ge=1, le=365)
    # An alert group firing again this soon after its incident resolved reopens that incident (flapping).
    flap_window_minutes: int = Field(default=30, ge=0)

    # Outgoing webhooks. Only global addresses are reachable unless allowed here, comma-separated: networks
    # (10.0.0.0/8, fd00::/8) or exact address:port entries (127.0.0.1:8099, [::1]:8099). Never this service itself.
    webhook_allowed_networks: str = ""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_disable_after_days: float = Field(default=5.0, gt=0)
    webhook_concurrency: int = Field(default=8, ge=1, le=64)

    # E-mail (review reminders to owners who are addresses, escalations). No host: e-mail is off.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_tls: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "riskops@localhost"
    # Quantified loss: the trials of a simulation when a request names none, and the currency of the figures.
    loss_trials: int = Field(default=10_000, ge=1_000, le=100_000)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, code: str) -> str:
        if code not in list_currencies():
            raise ValueError(f"'{code}' is not an ISO 4217 currency code")
        return code

    # Key risk indicators: the Prometheus server pulled KRIs query (an operator's trusted setting, loopback
    # allowed), how long a query may take, and how many days raw values are kept before rolling up per day.
    prometheus_url: str | None = None
    prometheus_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    kri_raw_days: int = Field(default=90, ge=1, le=3660)

    @field_validator("playbooks_dir", mode="before")
    @classmethod
    def _blank_is_no_directory(cls, value: object) -> object:
        return None if value == "" else value  # not Path(""), the working directory

    @field_validator("playbooks_mode")
    @classmethod
    def _replace_needs_a_directory(cls, value: PlaybooksMode, info: ValidationInfo) -> PlaybooksMode:
        if value == "replace" and info.data.get("playbooks_dir") is None:
            raise ValueError("'replace' needs RISKOPS_PLAYBOOKS_DIR (else no playbook at all would be served)")
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _allow_list(cls, value: str) -> str:
        parse_allow_list(value)  # a bad entry stops the service at start, not at the first delivery
        return value

    @property
    def allowed_networks(self) -> list[IPv4Network | IPv6Network]:
        return parse_allow_list(self.webhook_allowed_networks)[0]

    @property
    def allowed_endpoints(self) -> list[tuple[IPv4Address | IPv6Address, int]]:
        return parse_allow_list(self.webhook_allowed_networks)[1]


def parse_allow_list(
    text: str,
) -> tuple[list[IPv4Network | IPv6Network], list[tuple[IPv4Address | IPv6Address, int]]]:
    """RISKOPS_WEBHOOK_ALLOWED_NETWORKS as (networks, address:port endpoints); ValueError names a bad entry."""
    networks: list[IPv4Network | IPv6Network] = []
    endpoints: list[tuple[IPv4Address | IPv6Address, int]] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            if entry.startswith("["):
                host, bracket, port = entry[1:].partition("]:")
                if not bracket:
                    raise ValueError(entry)
                endpoints.append((ip_address(host), _port(port)))
            elif entry.count(":") == 1:  # an IPv4 address and port; an IPv6 network has more colons
                host, port = entry.split(":")
                endpoints.append((IPv4Address(host), _port(port)))
            else:
                networks.append(ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"'{entry}' is neither a network (10.0.0.0/8, fd00::/8, 192.0.2.7) nor an IP address and port "
                "(127.0.0.1:8099, [::1]:8099)"
            ) from None
    return networks, endpoints


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(text)
    return int(text)
