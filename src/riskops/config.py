from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting comes from a `RISKOPS_`-prefixed environment variable (or `.env`)."""

    model_config = SettingsConfigDict(env_prefix="RISKOPS_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./riskops.db"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # The playbook files synced into the database when `riskops serve` starts.
    playbooks_dir: Path = Path("playbooks")
    # How long a verified API key is trusted without asking the database again (0 = always ask).
    auth_cache_seconds: float = 5.0
    # Quarterly reviews: the month the fiscal year starts (1 = calendar quarters).
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    # Largest alert body the inbound endpoints accept (413 beyond).
    inbound_max_bytes: int = 1024 * 1024
    # Largest upload accepted by the import endpoint.
    import_max_bytes: int = 10 * 1024 * 1024

    # The scheduler: how often due work is looked for, and whether `serve` runs it (`riskops worker` always does).
    scheduler_enabled: bool = True
    scheduler_tick_seconds: float = Field(default=5.0, gt=0)
    # Notices before a date: review reminders, acceptance expiry, step deadlines, recovery-time breach.
    review_reminder_days: int = Field(default=14, ge=0)
    acceptance_warning_days: int = Field(default=30, ge=0)
    step_reminder_minutes: int = Field(default=10, ge=0)
    breach_warning_minutes: int = Field(default=30, ge=0)
    # An alert group firing again this soon after its incident resolved reopens that incident (flapping).
    flap_window_minutes: int = Field(default=30, ge=0)

    # Outgoing webhooks. Only global addresses are reachable unless a network is allowed here (CIDRs, comma-separated).
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

    @property
    def allowed_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(n.strip(), strict=False) for n in self.webhook_allowed_networks.split(",") if n.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
