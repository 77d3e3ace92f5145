"""`chat-server`: read the settings, set up logging, serve with uvicorn."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from app.core.config import Settings
from app.core.logging import configure_logging
from app.main import create_app

GRACEFUL_SHUTDOWN_SECONDS = 10


def load_settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "\n".join(f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        sys.exit(f"chat-server: invalid configuration\n{problems}")


def main() -> None:
    settings = load_settings_or_exit()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


if __name__ == "__main__":
    main()
