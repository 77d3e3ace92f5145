"""`chat-server`: read the settings, set up logging, serve with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from app.core.config import load_settings_or_exit
from app.core.data_dir_check import data_dir_problem
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
    if problem := data_dir_problem(settings.data_dir):
        sys.exit(f"chat-server: {problem}")
    configure_logging(settings.log_level)
    open_files = raise_open_file_limit()
    if open_files < settings.max_connections + RESERVED_FILES:
        log.warning(
            "the open-file limit is too low for MAX_CONNECTIONS: raise the hard limit (ulimit -Hn) or lower it",
            extra={"open_file_limit": open_files, "max_connections": settings.max_connections},
        )
    proxies = settings.forwarded_allow_ip_list
    app = create_app(settings)
    config = uvicorn.Config(
        app,
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
    server = StoppingServer(config, on_stop=app.state.change_hub.close_all)
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C, or the first re-raised once stopped
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class StoppingServer(uvicorn.Server):
    """uvicorn's server, which on SIGTERM or SIGINT stops accepting and waits for the open
    requests before the app's shutdown (and so the embedded database's stop) runs. Event
    streams never end by themselves: `on_stop` ends them at once, so in-flight requests finish
    and the server exits in well under GRACEFUL_SHUTDOWN_SECONDS with any number of streams
    open. A stop on SIGTERM, a service manager's normal way, exits 0 (uvicorn would re-raise
    the signal, which makes the exit status 143)."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_stop = on_stop

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:
            self._captured_signals.remove(sig)
        with contextlib.suppress(RuntimeError):  # no loop running yet: nothing to end
            asyncio.get_running_loop().call_soon_threadsafe(self._on_stop)


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
