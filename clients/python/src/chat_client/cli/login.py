"""`chat login` and `chat logout`: an API key of the CLI's own, kept in the config file.

Login asks for what its options do not give (the server, the username, the password without
echo, the scopes) when stdin is a terminal; otherwise the password is stdin's first line. It
logs in, creates a key (`POST /auths/api-keys`, which needs the password again), ends that
login session, and saves the key (config.py). Logout revokes the saved key
(`DELETE /auths/api-keys/current`, made with the key itself) and removes the file.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import socket
import sys
from typing import Any

from chat_client.cli import config
from chat_client.cli.connection import ENV_URL

DEFAULT_SCOPES = "read,write"
SCOPE_CHOICES = {"read": ("read",), "read,write": ("read", "write"), "write,read": ("read", "write")}


class UsageError(ValueError):
    """Wrong or missing input: exit code 2."""


def _ask(prompt: str, default: str | None = None) -> str:
    shown = f"{prompt} [{default}]: " if default else f"{prompt}: "
    sys.stderr.write(shown)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        raise UsageError(f"no answer for {prompt.lower()}")
    return answer.strip() or default or ""


def _scopes(text: str) -> tuple[str, ...]:
    scopes = SCOPE_CHOICES.get(text.replace(" ", ""))
    if scopes is None:
        raise UsageError(f"scopes must be read or read,write, not {text!r}")
    return scopes


def login(args: argparse.Namespace) -> None:
    from chat_client._client import Client
    from chat_client._core import DEFAULT_BASE_URL

    interactive = sys.stdin.isatty()
    saved = config.load()
    default_url = os.environ.get(ENV_URL) or (saved.url if saved else DEFAULT_BASE_URL)
    url = args.url or (_ask("Server URL", default_url) if interactive else default_url)
    username = args.username or (_ask("Username") if interactive else None)
    if not username:
        raise UsageError("give --username (stdin is not a terminal)")
    password = getpass.getpass("Password: ") if interactive else sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("no password given")
    asked = _ask("Scopes (read or read,write)", DEFAULT_SCOPES) if interactive and not args.scopes else None
    scopes = _scopes(args.scopes or asked or DEFAULT_SCOPES)
    name = f"chat CLI on {socket.gethostname()}"[:100]
    with Client(url, username=username, password=password) as chat:
        created = chat.create_api_key(name, current_password=password, scopes=scopes, expires_in_days=args.days)
        chat.logout()  # the key is what the CLI keeps; the login session is not needed any more
    path = config.save(config.Saved(url=chat.base_url, api_key=created.key, api_key_id=created.id, username=username))
    expires = created.expires_at.strftime("%Y-%m-%d") if created.expires_at else "never"
    sys.stderr.write(
        f"logged in to {chat.base_url} as {username}: API key {created.name!r} ({', '.join(created.scopes)}, "
        f"expires {expires}) saved in {path}\n"
    )


def logout(args: argparse.Namespace) -> None:
    from chat_client._client import Client
    from chat_client._exceptions import NotFound, Unauthorized

    saved = config.load()
    if saved is None:
        sys.stderr.write(f"not logged in (no {config.config_path()})\n")
        return
    # Unauthorized or NotFound: already revoked or expired, nothing left to revoke.
    with Client(saved.url, api_key=saved.api_key) as chat, contextlib.suppress(Unauthorized, NotFound):
        chat.revoke_api_key()
    config.forget()
    sys.stderr.write(f"logged out of {saved.url}: API key revoked, {config.config_path()} removed\n")


def add_all(commands: Any, options: argparse.ArgumentParser) -> None:
    entering = commands.add_parser(
        "login", parents=[options], help="create an API key for this CLI and keep it in the config file"
    )
    entering.add_argument("--username", help="asked when not given")
    entering.add_argument("--scopes", help=f"read or read,write (default {DEFAULT_SCOPES}; asked on a terminal)")
    entering.add_argument("--days", type=int, help="the key's lifetime in days (default: the server's)")
    entering.set_defaults(run=login)
    leaving = commands.add_parser("logout", parents=[options], help="revoke the saved API key and forget it")
    leaving.set_defaults(run=logout)
