"""Accounts: registration, login (throttled), logout and password changes."""

from __future__ import annotations

import re

from bson import ObjectId

from app.auth import api_keys, login_sessions, repository
from app.auth.principal import AuthenticatedUser
from app.auth.revocation import Revocation, RevocationCache, RevocationKind, revoke
from app.auth.schemas import PASSWORD_MAX, USERNAME_PATTERN, Role, TokenOut, UserOut
from app.auth.throttle import PasswordAttempts, check_registration
from app.core.audit import audit
from app.core.config import Settings
from app.core.db import Database, Document
from app.core.errors import BadRequest, Forbidden, Unauthorized
from app.core.hashing import PasswordHashing
from app.core.types import utc_now

BAD_CREDENTIALS = "Incorrect username or password"
WRONG_CURRENT_PASSWORD = "The current password is incorrect"
_USERNAME = re.compile(USERNAME_PATTERN)


async def register(
    database: Database, settings: Settings, hashing: PasswordHashing, username: str, password: str, address: str
) -> UserOut:
    """Self-registration: closed when ALLOW_REGISTRATION is false, rate-limited per address."""
    if not settings.allow_registration:
        raise Forbidden("Registration is closed; ask an administrator for an account")
    await check_registration(database.db, settings, address, utc_now())
    return await create_user(database, hashing, username, password)


async def create_user(
    database: Database, hashing: PasswordHashing, username: str, password: str, role: Role = "user"
) -> UserOut:
    password_hash = await hashing.hash(password)
    user_id = await repository.insert_user(database.db, username, password_hash, role)
    return await get_user(database, user_id)


async def get_user(database: Database, user_id: ObjectId) -> UserOut:
    document = await repository.find_user_by_id(database.db, user_id)
    if document is None:
        raise Unauthorized("User no longer exists")
    return UserOut.model_validate(document)


async def login(
    database: Database,
    settings: Settings,
    attempts: PasswordAttempts,
    hashing: PasswordHashing,
    username: str,
    password: str,
    address: str,
) -> TokenOut:
    """A token pair for valid credentials of an enabled account. One answer, in similar time,
    for an unknown user, a wrong password and a disabled account (an unknown user is verified
    against a dummy hash; all three are counted as failures)."""
    async with attempts.attempt(database.db, username, address) as attempt:
        user = await repository.find_user_by_username(database.db, username) if _USERNAME.match(username) else None
        stored_hash = user["password_hash"] if user else None
        matches, new_hash = await hashing.verify(password[: PASSWORD_MAX * 4], stored_hash)
        if user is None or not matches or user.get("disabled"):
            attempt.failure()
            _audit_failed_login(user, address, "disabled" if user and matches else "bad_credentials")
            raise Unauthorized(BAD_CREDENTIALS)
        attempt.success()
    await repository.record_login(database.db, user["_id"], utc_now(), new_hash)
    return await login_sessions.start(database, settings, user["_id"])


def _audit_failed_login(user: Document | None, address: str, reason: str) -> None:
    if user is None:
        audit("login.failed", reason="unknown_user", address=address)
    else:
        audit("login.failed", reason=reason, user_id=str(user["_id"]), username=user["username"], address=address)


async def check_current_password(
    database: Database,
    attempts: PasswordAttempts,
    hashing: PasswordHashing,
    user_id: ObjectId,
    password: str,
    address: str,
) -> Document:
    """The signed-in user's document when `password` is theirs (throttled like a login);
    BadRequest otherwise (not 401: the caller's session is valid)."""
    document = await repository.find_user_by_id(database.db, user_id)
    if document is None:
        raise Unauthorized("User no longer exists")
    async with attempts.attempt(database.db, document["username"], address) as attempt:
        matches, _ = await hashing.verify(password[: PASSWORD_MAX * 4], document["password_hash"])
        if not matches:
            attempt.failure()
            _audit_failed_login(document, address, "wrong_current_password")
            raise BadRequest(WRONG_CURRENT_PASSWORD)
        attempt.success()
    return document


async def logout(database: Database, settings: Settings, cache: RevocationCache, user: AuthenticatedUser) -> None:
    """End the caller's login session: its refresh tokens, and the access token in use (and
    any other access token of the session)."""
    if user.family_id is not None:
        await login_sessions.end_families(database, settings, cache, user.id, {user.family_id})
    if user.expires_at is not None:
        await revoke(database, cache, [Revocation(RevocationKind.TOKEN, user.token_id, user.expires_at)])


async def logout_everywhere(
    database: Database, settings: Settings, cache: RevocationCache, user: AuthenticatedUser
) -> None:
    """End every login session of the user, the caller's included (revoking a session's family
    revokes its access tokens too); API keys are left alone."""
    await login_sessions.end_all_but(database, settings, cache, user.id, keep=None)
    audit("logout.everywhere", user_id=str(user.id))


async def change_password(
    database: Database,
    settings: Settings,
    cache: RevocationCache,
    attempts: PasswordAttempts,
    hashing: PasswordHashing,
    user: AuthenticatedUser,
    current_password: str,
    new_password: str,
    address: str,
) -> None:
    """Check the current password (throttled like a login), store the new one, log out every
    other session of the user (this one stays logged in) and revoke the user's API keys."""
    await check_current_password(database, attempts, hashing, user.id, current_password, address)
    if not await set_password(database, hashing, user.id, new_password):
        raise Unauthorized("User no longer exists")
    await login_sessions.end_all_but(database, settings, cache, user.id, keep=user.family_id)
    revoked = await api_keys.delete_user_keys(database, cache, user.id, "password_change")
    audit("password.changed", user_id=str(user.id), by="owner", api_keys_revoked=revoked)


async def set_password(database: Database, hashing: PasswordHashing, user_id: ObjectId, new_password: str) -> bool:
    """Store a new password hash; False when the user does not exist."""
    password_hash = await hashing.hash(new_password)
    return await repository.set_password_hash(database.db, user_id, password_hash)
