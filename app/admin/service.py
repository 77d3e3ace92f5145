"""Administration: users (list, create, disable/enable, role, password reset, delete) and
statistics. Disabling, resetting and deleting revoke the user's credentials on every server."""

from __future__ import annotations

from datetime import timedelta

from bson import ObjectId

from app.admin.schemas import Activity, AdminUserOut, AdminUserUpdate, StatsOut
from app.auth import api_keys, login_sessions
from app.auth import repository as users
from app.auth import service as accounts
from app.auth.revocation import RevocationCache
from app.auth.schemas import Role
from app.chat import repository as chat
from app.chat import search_index
from app.chat.schemas import Page
from app.core import idempotency
from app.core.audit import audit
from app.core.config import Settings
from app.core.cursors import CursorCodec
from app.core.db import Database, Document
from app.core.errors import BadRequest, Forbidden, NotFound
from app.core.hashing import PasswordHashing
from app.core.types import parse_object_id, utc_now

USER_NOT_FOUND = "User not found"
USERS_CURSOR = "admin-users"
ACTIVITY_PERIOD = timedelta(hours=24)


async def require_admin(database: Database, user_id: ObjectId) -> None:
    """Forbidden unless the user exists, is enabled and is an admin: read from the database on
    each admin request, so a demotion takes effect at once."""
    document = await users.find_user_by_id(database.db, user_id)
    if document is None or document.get("disabled") or document.get("role") != "admin":
        raise Forbidden("Administrators only")


def _user_id(raw: str) -> ObjectId:
    try:
        return parse_object_id(raw)
    except ValueError as exc:
        raise NotFound(USER_NOT_FOUND) from exc


async def list_users(
    database: Database, codec: CursorCodec, prefix: str, limit: int, cursor: str | None
) -> Page[AdminUserOut]:
    """Users whose name starts with `prefix` (case-insensitively), in name order."""
    after = None
    if cursor is not None:
        after = codec.decode(USERS_CURSOR, cursor).get("after")
        if not isinstance(after, str):
            raise BadRequest("Invalid cursor")
    found = await users.users_by_name(database.db, prefix, after, limit + 1)
    items = found[:limit]
    next_cursor = codec.encode(USERS_CURSOR, {"after": items[-1]["username_key"]}) if len(found) > limit else None
    return Page(items=[AdminUserOut.model_validate(document) for document in items], next_cursor=next_cursor)


def _actor(admin_id: ObjectId | None) -> str:
    return str(admin_id) if admin_id is not None else "chat-admin"


async def create_user(
    database: Database,
    hashing: PasswordHashing,
    admin_id: ObjectId | None,
    username: str,
    password: str,
    role: Role,
) -> AdminUserOut:
    created = await accounts.create_user(database, hashing, username, password, role)
    audit("admin.user_created", admin=_actor(admin_id), user_id=str(created.id), role=role)
    return await get_user(database, created.id)


async def get_user(database: Database, user_id: ObjectId) -> AdminUserOut:
    document = await users.find_user_by_id(database.db, user_id)
    if document is None:
        raise NotFound(USER_NOT_FOUND)
    return AdminUserOut.model_validate(document)


async def find_user_by_name(database: Database, username: str) -> AdminUserOut:
    document = await users.find_user_by_username(database.db, username)
    if document is None:
        raise NotFound(USER_NOT_FOUND)
    return AdminUserOut.model_validate(document)


def _not_self(admin_id: ObjectId | None, user_id: ObjectId) -> None:
    if admin_id == user_id:
        raise BadRequest("Administrators cannot disable, demote or delete their own account")


async def update_user(
    database: Database,
    settings: Settings,
    cache: RevocationCache,
    admin_id: ObjectId | None,
    raw_user_id: str,
    update: AdminUserUpdate,
) -> AdminUserOut:
    """Disable or enable a user, or change the role. Disabling logs the user out everywhere:
    access tokens stop within seconds, refresh tokens are deleted, API keys stop working."""
    user_id = _user_id(raw_user_id)
    changes: Document = {}
    if update.disabled is not None:
        changes["disabled"] = update.disabled
    if update.role is not None:
        changes["role"] = update.role
    if update.disabled or update.role == "user":
        _not_self(admin_id, user_id)
    document = await users.update_user(database.db, user_id, changes)
    if document is None:
        raise NotFound(USER_NOT_FOUND)
    if update.disabled:
        await login_sessions.revoke_user(database, settings, cache, user_id)
    if update.disabled is not None:
        event = "admin.user_disabled" if update.disabled else "admin.user_enabled"
        audit(event, admin=_actor(admin_id), user_id=str(user_id))
    if update.role is not None:
        audit("admin.role_changed", admin=_actor(admin_id), user_id=str(user_id), role=update.role)
    return AdminUserOut.model_validate(document)


async def reset_password(
    database: Database,
    settings: Settings,
    cache: RevocationCache,
    hashing: PasswordHashing,
    admin_id: ObjectId | None,
    raw_user_id: str,
    new_password: str,
) -> None:
    """Set a new password, log the user out everywhere and revoke the user's API keys."""
    user_id = _user_id(raw_user_id)
    if not await accounts.set_password(database, hashing, user_id, new_password):
        raise NotFound(USER_NOT_FOUND)
    await login_sessions.revoke_user(database, settings, cache, user_id)
    revoked = await api_keys.delete_user_keys(database, cache, user_id, "admin_password_reset")
    audit("admin.password_reset", admin=_actor(admin_id), user_id=str(user_id), api_keys_revoked=revoked)


async def delete_user(
    database: Database, settings: Settings, cache: RevocationCache, admin_id: ObjectId | None, raw_user_id: str
) -> None:
    """Delete the user, then everything of theirs: credentials first (so nothing new can be
    written), then sessions, then the sessions' messages (as deleting one session does)."""
    user_id = _user_id(raw_user_id)
    _not_self(admin_id, user_id)
    if not await users.delete_user(database.db, user_id):
        raise NotFound(USER_NOT_FOUND)
    await login_sessions.revoke_user(database, settings, cache, user_id)
    await api_keys.delete_user_keys(database, cache, user_id, "user_deleted")
    audit("admin.user_deleted", admin=_actor(admin_id), user_id=str(user_id))
    session_ids = await chat.user_session_ids(database.db, user_id)
    await chat.delete_user_sessions(database.db, user_id)
    await chat.delete_messages_of_sessions(database.db, session_ids)
    await search_index.forget_user_counts(database.db, user_id)
    await idempotency.forget_user(database.db, user_id)


async def stats(database: Database) -> StatsOut:
    since = utc_now() - ACTIVITY_PERIOD
    db = database.db
    return StatsOut(
        users=await users.count_users(db),
        sessions=await chat.count_sessions(db),
        messages=await chat.count_messages(db),
        last_24h=Activity(
            new_users=await users.count_users_created_since(db, since),
            active_users=await users.count_users_logged_in_since(db, since),
            active_sessions=await chat.count_sessions_active_since(db, since),
        ),
    )
