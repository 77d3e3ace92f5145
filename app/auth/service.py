"""Accounts: registration, login (throttled), logout and password changes."""

from __future__ import annotations

import asyncio
import re

from bson import ObjectId

from app.auth import login_sessions, repository, throttle
from app.auth.principal import AuthenticatedUser
from app.auth.revocation import Revocation, RevocationCache, RevocationKind, revoke
from app.auth.schemas import PASSWORD_MAX, USERNAME_PATTERN, Role, TokenOut, UserOut
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import BadRequest, Forbidden, Unauthorized
from app.core.security import hash_password, verify_password
from app.core.types import utc_now

BAD_CREDENTIALS = "Incorrect username or password"
DISABLED = "This account is disabled"
_USERNAME = re.compile(USERNAME_PATTERN)


async def register(database: Database, settings: Settings, username: str, password: str, address: str) -> UserOut:
    """Self-registration: closed when ALLOW_REGISTRATION is false, rate-limited per address."""
    if not settings.allow_registration:
        raise Forbidden("Registration is closed; ask an administrator for an account")
    await throttle.check_registration(database.db, settings, address, utc_now())
    return await create_user(database, username, password)


async def create_user(database: Database, username: str, password: str, role: Role = "user") -> UserOut:
    password_hash = await asyncio.to_thread(hash_password, password)
    user_id = await repository.insert_user(database.db, username, password_hash, role)
    return await get_user(database, user_id)


async def get_user(database: Database, user_id: ObjectId) -> UserOut:
    document = await repository.find_user_by_id(database.db, user_id)
    if document is None:
        raise Unauthorized("User no longer exists")
    return UserOut.model_validate(document)


async def login(database: Database, settings: Settings, username: str, password: str, address: str) -> TokenOut:
    """A token pair for valid credentials; one answer, in similar time, for an unknown user and
    a wrong password (an unknown user is verified against a dummy hash and counted alike)."""
    now = utc_now()
    has_failures = await throttle.check_login(database.db, username, address, now)
    user = None
    if _USERNAME.match(username):
        user = await repository.find_user_by_username(database.db, username)
    stored_hash = user["password_hash"] if user else None
    matches, new_hash = await asyncio.to_thread(verify_password, password[: PASSWORD_MAX * 4], stored_hash)
    if user is None or not matches:
        await throttle.login_failed(database.db, throttle.LoginLimits.from_settings(settings), username, address, now)
        raise Unauthorized(BAD_CREDENTIALS)
    if has_failures:
        await throttle.login_succeeded(database.db, username)
    if user.get("disabled"):
        raise Forbidden(DISABLED)
    await repository.record_login(database.db, user["_id"], now, new_hash)
    return await login_sessions.start(database, settings, user["_id"])


async def logout(database: Database, settings: Settings, cache: RevocationCache, user: AuthenticatedUser) -> None:
    """End the caller's login session: its refresh tokens, and the access token in use (and
    any other access token of the session)."""
    if user.family_id is not None:
        await login_sessions.end_families(database, settings, cache, user.id, {user.family_id})
    if user.expires_at is not None:
        await revoke(database, cache, [Revocation(RevocationKind.TOKEN, user.token_id, user.expires_at)])


async def change_password(
    database: Database,
    settings: Settings,
    cache: RevocationCache,
    user: AuthenticatedUser,
    current_password: str,
    new_password: str,
    address: str,
) -> None:
    """Check the current password (throttled like a login), store the new one, and log out
    every other session of the user; this one stays logged in."""
    now = utc_now()
    document = await repository.find_user_by_id(database.db, user.id)
    if document is None:
        raise Unauthorized("User no longer exists")
    username = document["username"]
    has_failures = await throttle.check_login(database.db, username, address, now)
    matches, _ = await asyncio.to_thread(verify_password, current_password, document["password_hash"])
    if not matches:
        await throttle.login_failed(database.db, throttle.LoginLimits.from_settings(settings), username, address, now)
        raise BadRequest("The current password is incorrect")
    if has_failures:
        await throttle.login_succeeded(database.db, username)
    if not await set_password(database, user.id, new_password):
        raise Unauthorized("User no longer exists")
    await login_sessions.end_all_but(database, settings, cache, user.id, keep=user.family_id)


async def set_password(database: Database, user_id: ObjectId, new_password: str) -> bool:
    """Store a new password hash; False when the user does not exist."""
    password_hash = await asyncio.to_thread(hash_password, new_password)
    return await repository.set_password_hash(database.db, user_id, password_hash)
