from functools import lru_cache
from pathlib import Path
from typing import Literal

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
    # Largest upload accepted by the import endpoint.
    import_max_bytes: int = 10 * 1024 * 1024


@lru_cache
def get_settings() -> Settings:
    return Settings()
