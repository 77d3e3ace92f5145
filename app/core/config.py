"""Settings, read from the environment (and `.env`) once and validated when they load."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.private_files import PRIVATE_DIR_MODE

MIN_SECRET_BYTES = 32
MIN_METRICS_TOKEN_BYTES = 16
SECRET_FILE_NAME = "jwt_secret"
# Transactions one server process runs at once (app.core.transactions). SecantusDB does not
# run transactions in parallel usefully: 64 concurrent posts, each a transaction writing a
# message and its search terms, finished 4x fewer per second than one at a time, many after
# the 2.5 s timeout; 1, 2 or 4 at a time all ran at the one-at-a-time rate (~200/s).
DEFAULT_MAX_TRANSACTIONS = 4
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    mongodb_uri: SecretStr = SecretStr("")
    mongodb_db: str = Field(default="chat", min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_-]+$")
    data_dir: Path = Path("./data")
    jwt_secret: SecretStr = SecretStr("")
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    refresh_family_max_days: int = Field(default=90, ge=1, le=3650)
    refresh_max_per_hour: int = Field(default=60, ge=1)
    allow_registration: bool = True
    login_max_failures: int = Field(default=10, ge=1)
    login_max_failures_per_ip: int = Field(default=100, ge=1)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    login_lockout_seconds: int = Field(default=15 * 60, ge=1)
    login_lockout_max_seconds: int = Field(default=24 * 60 * 60, ge=1)
    login_max_failures_per_account: int = Field(default=100, ge=1)
    login_max_in_flight_per_account: int = Field(default=2, ge=1)
    login_max_in_flight_per_ip: int = Field(default=16, ge=1)
    password_hash_concurrency: int = Field(default=0, ge=0, le=256)
    password_hash_wait_seconds: float = Field(default=2.0, gt=0, le=60)
    register_max_per_ip: int = Field(default=20, ge=1)
    register_window_seconds: int = Field(default=60 * 60, ge=1)
    revocation_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    api_key_default_days: int = Field(default=90, ge=1, le=3650)
    api_key_max_days: int = Field(default=365, ge=1, le=3650)
    api_key_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    log_level: LogLevel = "INFO"
    cors_origins: str = ""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    account_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    db_timeout_seconds: float = Field(default=2.5, gt=0, le=60)
    db_max_transactions: int = Field(default=DEFAULT_MAX_TRANSACTIONS, ge=1, le=10_000)
    body_read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    request_body_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    request_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_connections: int = Field(default=2000, ge=1)
    forwarded_allow_ips: str = ""
    metrics_token: SecretStr = SecretStr("")
    event_queue_size: int = Field(default=1000, ge=10, le=100_000)
    event_replay_buffer: int = Field(default=10_000, ge=100, le=1_000_000)
    event_streams_per_user: int = Field(default=20, ge=1, le=10_000)
    import_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    import_max_conversations: int = Field(default=10_000, ge=1)
    import_max_messages_per_conversation: int = Field(default=10_000, ge=1)
    import_max_unzipped_ratio: int = Field(default=50, ge=1, le=10_000)
    import_max_unzipped_bytes: int = Field(default=1024**3, ge=1024)
    event_replay_buffer_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    event_streams_max: int = Field(default=1000, ge=1)
    heavy_requests_per_user: int = Field(default=4, ge=1, le=1000)
    model_base_url: str = Field(default="", max_length=2048)
    model_api_key: SecretStr = SecretStr("")
    model_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    model_context_chars: int = Field(default=48_000, ge=1000, le=10_000_000)
    model_max_concurrent: int = Field(default=16, ge=1, le=10_000)
    model_max_per_user: int = Field(default=2, ge=1, le=1000)
    model_allow_any: bool = False
    chat_completions_record: bool = True

    @property
    def embedded(self) -> bool:
        return not self.mongodb_uri.get_secret_value()

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def forwarded_allow_ip_list(self) -> list[str]:
        """The proxies whose X-Forwarded-For / -Proto are believed; empty: nobody's."""
        return [address.strip() for address in self.forwarded_allow_ips.split(",") if address.strip()]

    @model_validator(mode="after")
    def _api_key_default_within_max(self) -> Settings:
        if self.api_key_default_days > self.api_key_max_days:
            raise ValueError("API_KEY_DEFAULT_DAYS must not exceed API_KEY_MAX_DAYS")
        return self

    @model_validator(mode="after")
    def _refuse_weak_secret(self) -> Settings:
        secret = self.jwt_secret.get_secret_value()
        if secret and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes; set it to a random value, "
                'e.g. JWT_SECRET=$(python3 -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        metrics_token = self.metrics_token.get_secret_value()
        if metrics_token and len(metrics_token.encode()) < MIN_METRICS_TOKEN_BYTES:
            raise ValueError(f"METRICS_TOKEN is shorter than {MIN_METRICS_TOKEN_BYTES} bytes; set it to a random value")
        if not self.embedded and not secret:
            raise ValueError(
                "MONGODB_URI is set but JWT_SECRET is not: set JWT_SECRET to a random value of at "
                f"least {MIN_SECRET_BYTES} bytes so that tokens stay valid across servers and restarts"
            )
        return self


def with_persistent_secret(settings: Settings) -> Settings:
    """In embedded mode without JWT_SECRET, use a secret generated once and kept in DATA_DIR.

    Tokens then survive restarts on the same data, as they would with a configured secret.
    """
    if settings.jwt_secret.get_secret_value():
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    path = settings.data_dir / SECRET_FILE_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text().strip()
    else:
        secret = secrets.token_urlsafe(48)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
    return settings.model_copy(update={"jwt_secret": SecretStr(secret)})


def load_settings_or_exit(program: str = "chat-server") -> Settings:
    """The settings, or exit with one line per invalid one (no traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "\n".join(f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        sys.exit(f"{program}: invalid configuration\n{problems}")
