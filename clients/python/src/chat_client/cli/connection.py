"""Which server and credentials a `chat` command uses: --url / --api-key, then CHAT_URL /
CHAT_API_KEY (or CHAT_USERNAME and CHAT_PASSWORD), then what `chat login` saved. The saved key
is only ever sent to the server it was made for."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from chat_client.cli import config

if TYPE_CHECKING:
    from chat_client._base_client import BaseClient
    from chat_client._client import Client

ENV_URL, ENV_API_KEY, ENV_USERNAME = "CHAT_URL", "CHAT_API_KEY", "CHAT_USERNAME"


def skip_httpx_command_line() -> None:
    """httpx imports its own command-line tool when rich, click and pygments are installed
    (~180 ms of a `chat append` on a 2-core machine); this process never runs it, so it is
    marked as absent (httpx then defines a stub that is never called)."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def open_client(args: argparse.Namespace) -> Client:
    skip_httpx_command_line()
    from chat_client._client import Client  # imported when a command needs it, not for --help

    url, api_key = server_and_key(args)
    return Client(url, api_key=api_key)


def open_request_core(args: argparse.Namespace) -> BaseClient:
    """Client's request core alone (retries, credentials), without its API and the response
    models: for a command that prints from the server's JSON (`chat append`)."""
    skip_httpx_command_line()
    from chat_client._base_client import BaseClient

    url, api_key = server_and_key(args)
    return BaseClient(url, api_key=api_key)


def server_and_key(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """--url and --api-key, else the environment, else what `chat login` saved. No URL: the
    client's default; no key: only with CHAT_USERNAME, which the client logs in as."""
    url = args.url or os.environ.get(ENV_URL) or None
    api_key = args.api_key or os.environ.get(ENV_API_KEY) or None
    if (url is None or api_key is None) and not os.environ.get(ENV_USERNAME):
        saved = config.load()
        if saved is not None:
            url = url or saved.url
            if api_key is None and url.rstrip("/") == saved.url.rstrip("/"):
                api_key = saved.api_key
    if api_key is None and not os.environ.get(ENV_USERNAME):
        from chat_client._exceptions import AuthenticationFailed

        raise AuthenticationFailed(f"not logged in: run `chat login`, or set {ENV_API_KEY}")
    return url, api_key
