"""`chat-server`: read the settings, set up logging, serve with uvicorn."""

from __future__ import annotations

import logging
import os
import resource

import uvicorn

from app.core.config import load_settings_or_exit
from app.core.http_protocol import with_header_deadline
from app.core.logging import configure_logging
from app.core.private_files import OWNER_ONLY_UMASK
from app.main import create_app

log = logging.getLogger("app.server")
GRACEFUL_SHUTDOWN_SECONDS = 10
RESERVED_FILES = 64  # the database connections, log and data files beside the client connections


def main() -> None:
    os.umask(OWNER_ONLY_UMASK)  # DATA_DIR and everything the server or its database writes there
    settings = load_settings_or_exit()
    configure_logging(settings.log_level)
    open_files = raise_open_file_limit()
    if open_files < settings.max_connections + RESERVED_FILES:
        log.warning(
            "the open-file limit is too low for MAX_CONNECTIONS: raise the hard limit (ulimit -Hn) or lower it",
            extra={"open_file_limit": open_files, "max_connections": settings.max_connections},
        )
    proxies = settings.forwarded_allow_ip_list
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        http=with_header_deadline(settings.request_header_timeout_seconds),
        limit_concurrency=settings.max_connections,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )


def raise_open_file_limit() -> int:
    """Raise this process's open-file soft limit to its hard limit (often 1,024 against
    1,048,576): at the soft limit, accepting a connection fails and every client waits, which
    ~1,100 idle connections caused. Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        log.info("raised the open-file limit", extra={"from": soft, "to": hard})
        return hard
    return soft if soft != resource.RLIM_INFINITY else hard


if __name__ == "__main__":
    main()
