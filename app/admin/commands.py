"""The `chat-admin` commands (cli.py parses and dispatches; connection.py opens the database)."""

from __future__ import annotations

import argparse
import getpass
import sys

from pydantic import TypeAdapter, ValidationError

from app.admin import service
from app.admin.cli import fail
from app.admin.schemas import AdminUserUpdate
from app.auth.revocation import RevocationCache
from app.auth.schemas import Password, Role, Username
from app.core.config import Settings
from app.core.cursors import CursorCodec
from app.core.db import Database
from app.core.errors import Conflict
from app.core.hashing import PasswordHashing

LIST_PAGE_SIZE = 200
DEMO_USERS = (("alice", "alicepass123"), ("testuser", "testpass123"))


def read_password(prompt_for: str) -> str:
    """From a prompt (typed twice) on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {prompt_for}: ")
        if getpass.getpass("Repeat it: ") != password:
            fail("the passwords differ", 2)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        return TypeAdapter(Password).validate_python(password)
    except ValidationError as exc:
        fail(f"unacceptable password: {exc.errors()[0]['msg']}", 2)
        raise AssertionError("unreachable") from exc


def _username(name: str) -> str:
    try:
        return TypeAdapter(Username).validate_python(name)
    except ValidationError as exc:
        fail(f"unacceptable username {name!r}: {exc.errors()[0]['msg']}", 2)
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
