"""`chat-admin`: user administration from a shell, for bootstrap and scripts.

It uses the server's database: MONGODB_URI when set; otherwise the embedded database of a
running server, found through DATA_DIR/mongodb.uri (pinged first: a file left by a crash
points nowhere); otherwise it starts the embedded database itself for the command's duration
(then no server may start on the same DATA_DIR until it is done).

Changes reach running servers through the database: a disabled user's access stops within
REVOCATION_POLL_SECONDS.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from app.admin import agents_command, service
from app.admin.import_command import import_file
from app.admin.schemas import AdminUserUpdate
from app.auth.revocation import RevocationCache
from app.auth.schemas import Password, Role, Username
from app.cli import load_settings_or_exit
from app.core.config import Settings
from app.core.cursors import CursorCodec
from app.core.db import Database, close_client, open_database
from app.core.embedded import URI_FILE_NAME, EmbeddedDatabase, EmbeddedDatabaseError
from app.core.errors import AppError, Conflict
from app.core.hashing import PasswordHashing
from app.core.private_files import OWNER_ONLY_UMASK

PING_TIMEOUT_MS = 1000
LIST_PAGE_SIZE = 200
DEMO_USERS = (("alice", "alicepass123"), ("testuser", "testpass123"))


def _fail(message: str, code: int = 1) -> None:
    print(f"chat-admin: {message}", file=sys.stderr)
    sys.exit(code)


async def running_embedded_uri(data_dir: Path) -> str | None:
    """The URI in DATA_DIR/mongodb.uri when a database answers there; None otherwise."""
    try:
        uri = (data_dir / URI_FILE_NAME).read_text().strip()
    except FileNotFoundError:
        return None
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=PING_TIMEOUT_MS, connectTimeoutMS=PING_TIMEOUT_MS, timeoutMS=PING_TIMEOUT_MS
    )
    try:
        await client.admin.command("ping")
    except PyMongoError:
        print(f"chat-admin: ignoring stale {data_dir / URI_FILE_NAME} (nothing answers there)", file=sys.stderr)
        return None
    finally:
        await client.close()
    return uri


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[Database]:
    uri = settings.mongodb_uri.get_secret_value() or await running_embedded_uri(settings.data_dir)
    embedded = None if uri else EmbeddedDatabase(settings.data_dir)
    try:
        if embedded is not None:
            uri = await embedded.start()
        assert uri
        database = await open_database(uri, settings)
        try:
            yield database
        finally:
            await close_client(database.client)
    finally:
        if embedded is not None:
            await embedded.stop()


def read_password(prompt_for: str) -> str:
    """From a prompt (typed twice) on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {prompt_for}: ")
        if getpass.getpass("Repeat it: ") != password:
            _fail("the passwords differ", 2)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        return TypeAdapter(Password).validate_python(password)
    except ValidationError as exc:
        _fail(f"unacceptable password: {exc.errors()[0]['msg']}", 2)
        raise AssertionError("unreachable") from exc


def _username(name: str) -> str:
    try:
        return TypeAdapter(Username).validate_python(name)
    except ValidationError as exc:
        _fail(f"unacceptable username {name!r}: {exc.errors()[0]['msg']}", 2)
        raise AssertionError("unreachable") from exc


async def create_user(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    username = _username(args.name)
    role: Role = "admin" if args.admin else "user"
    hashing = PasswordHashing.from_settings(settings)
    user = await service.create_user(database, hashing, None, username, read_password(username), role)
    print(f"created {user.role} {user.username} ({user.id})")


async def list_users(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    codec = CursorCodec("chat-admin")
    cursor = None
    print(f"{'USERNAME':<32} {'ROLE':<6} {'STATUS':<9} {'CREATED':<24} LAST LOGIN")
    while True:
        page = await service.list_users(database, codec, "", LIST_PAGE_SIZE, cursor)
        for user in page.items:
            status = "disabled" if user.disabled else "active"
            last_login = user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "-"
            created = user.created_at.isoformat(timespec="seconds")
            print(f"{user.username:<32} {user.role:<6} {status:<9} {created:<24} {last_login}")
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def _set_disabled(database: Database, settings: Settings, name: str, disabled: bool) -> None:
    user = await service.find_user_by_name(database, name)
    update = AdminUserUpdate(disabled=disabled)
    await service.update_user(database, settings, RevocationCache(), None, str(user.id), update)
    print(f"{'disabled' if disabled else 'enabled'} {user.username}")


async def disable(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    await _set_disabled(database, settings, args.name, True)


async def enable(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    await _set_disabled(database, settings, args.name, False)


async def seed_demo(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    """Demo accounts with well-known passwords: for trying the server out, never in production."""
    hashing = PasswordHashing.from_settings(settings)
    for username, password in DEMO_USERS:
        try:
            await service.create_user(database, hashing, None, username, password, "user")
        except Conflict:
            print(f"{username} exists already; left as it is")
        else:
            print(f"created user {username} (password {password})")


Command = Callable[[Database, Settings, argparse.Namespace], Awaitable[None]]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="chat-admin", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = root.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create a user; password from a prompt, or stdin when piped")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="with the admin role")
    create.set_defaults(run=create_user)
    commands.add_parser("list-users", help="every user, in name order").set_defaults(run=list_users)
    switches: tuple[tuple[str, Command, str], ...] = (
        ("disable", disable, "log a user out everywhere and refuse logins"),
        ("enable", enable, "allow logins again"),
    )
    for name, run, text in switches:
        command = commands.add_parser(name, help=text)
        command.add_argument("name")
        command.set_defaults(run=run)
    commands.add_parser("seed-demo", help="demo users alice and testuser (known passwords)").set_defaults(run=seed_demo)
    importing = commands.add_parser(
        "import", help="import a chat-export NDJSON file or a ChatGPT export (conversations.json or zip) for a user"
    )
    importing.add_argument("--user", required=True, help="the username to import for")
    importing.add_argument("file", type=Path)
    importing.set_defaults(run=import_file)
    agents_command.add_parsers(commands)
    return root


async def run(settings: Settings, command: Command, args: argparse.Namespace) -> None:
    async with connect(settings) as database:
        await command(database, settings, args)


def main(argv: list[str] | None = None) -> None:
    os.umask(OWNER_ONLY_UMASK)  # it may start the embedded database on DATA_DIR
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="chat-admin: %(levelname)s %(name)s: %(message)s")
    settings = load_settings_or_exit()
    try:
        asyncio.run(run(settings, args.run, args))
    except AppError as exc:
        _fail(exc.detail)
    except PyMongoError as exc:
        _fail(f"database error: {exc}")
    except OSError as exc:
        _fail(f"cannot read the file: {exc.strerror or exc}")
    except EmbeddedDatabaseError as exc:
        first_line = str(exc).splitlines()[0]
        _fail(f"cannot start the embedded database in {settings.data_dir} (is a server using it?): {first_line}")


if __name__ == "__main__":
    main()
