"""`chat-admin`: user administration from a shell, for bootstrap and scripts.

It works on the server's database, found as the server finds it (MONGODB_URI, else the embedded
database under DATA_DIR: see connection.py), and says which one on stderr on every run.
Changes reach running servers through the database: a disabled user's access stops within
REVOCATION_POLL_SECONDS.

Only argparse is imported until the arguments are parsed: `chat-admin --help` answers at once,
and a command imports what it uses (the web framework never).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.private_files import OWNER_ONLY_UMASK

if TYPE_CHECKING:
    from app.core.config import Settings
    from app.core.db import Database

Command = Callable[["Database", "Settings", argparse.Namespace], Awaitable[None]]


def _command(parser: argparse.ArgumentParser, target: str) -> argparse.ArgumentParser:
    """`target` is "module:function" under app.admin, imported only when it runs."""
    parser.set_defaults(target=target)
    return parser


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="chat-admin",
        description="User administration on the chat server's database (the one DATA_DIR or MONGODB_URI names).",
    )
    root.add_argument(
        "--init", action="store_true", help="create a new, empty embedded database when DATA_DIR has none"
    )
    commands = root.add_subparsers(dest="command", required=True)
    create = _command(
        commands.add_parser("create-user", help="create a user; password from a prompt, or stdin when piped"),
        "commands:create_user",
    )
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="with the admin role")
    _command(commands.add_parser("list-users", help="every user, in name order"), "commands:list_users")
    for name, text in (("disable", "log a user out everywhere and refuse logins"), ("enable", "allow logins again")):
        _command(commands.add_parser(name, help=text), f"commands:{name}").add_argument("name")
    _command(
        commands.add_parser("seed-demo", help="demo users alice and testuser (known passwords)"), "commands:seed_demo"
    )
    importing = _command(
        commands.add_parser(
            "import", help="import a chat-export NDJSON file or a ChatGPT export (conversations.json or zip) for a user"
        ),
        "import_command:import_file",
    )
    importing.add_argument("--user", required=True, help="the username to import for")
    importing.add_argument("file", type=Path)
    _agent_parsers(commands)
    return root


def _agent_parsers(commands: Any) -> None:
    """`chat-admin agents list|show|create|update|delete` (agents_command.py)."""
    group = commands.add_parser("agents", help="the agents that reply in sessions (list, show, create, update, delete)")
    actions = group.add_subparsers(dest="action", required=True)
    _command(actions.add_parser("list", help="every agent, in name order"), "agents_command:list_agents")
    for name, function, text in (
        ("show", "show_agent", "one agent as JSON"),
        ("delete", "delete_agent", "delete an agent"),
    ):
        _command(actions.add_parser(name, help=text), f"agents_command:{function}").add_argument("name")
    for name, function, text in (
        ("create", "create_agent", "a new agent (--model required)"),
        ("update", "update_agent", "change some fields (--clear FIELD removes temperature or max_output_tokens)"),
    ):
        action = _command(actions.add_parser(name, help=text), f"agents_command:{function}")
        action.add_argument("name")
        action.add_argument("--model", required=name == "create")
        action.add_argument("--instructions", help="the system prompt, or - to read it from stdin")
        action.add_argument("--temperature", type=float)
        action.add_argument("--max-output-tokens", type=int)
        action.add_argument("--description")
        if name == "update":
            action.add_argument("--clear", action="append", choices=["temperature", "max_output_tokens"], default=[])


def resolve(target: str) -> Command:
    module, _, function = target.partition(":")
    command: Command = getattr(import_module(f"app.admin.{module}"), function)
    return command


async def run(settings: Settings, command: Command, args: argparse.Namespace) -> None:
    from app.admin.connection import connect

    async with connect(settings, init=args.init) as database:
        await command(database, settings, args)


def main(argv: list[str] | None = None) -> None:
    os.umask(OWNER_ONLY_UMASK)  # it may start the embedded database on DATA_DIR
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="chat-admin: %(levelname)s %(name)s: %(message)s")
    from pymongo.errors import PyMongoError

    from app.admin.connection import Refused
    from app.core.config import load_settings_or_exit
    from app.core.errors import AppError

    settings = load_settings_or_exit("chat-admin")
    try:
        asyncio.run(run(settings, resolve(args.target), args))
    except Refused as exc:
        fail(str(exc))
    except AppError as exc:
        fail(exc.detail)
    except PyMongoError as exc:
        fail(f"database error: {exc}")
    except OSError as exc:
        fail(f"cannot read the file: {exc.strerror or exc}")


def say(message: str) -> None:
    print(f"chat-admin: {message}", file=sys.stderr)


def fail(message: Any, code: int = 1) -> None:
    say(str(message))
    sys.exit(code)


if __name__ == "__main__":
    main()
