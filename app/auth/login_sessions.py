"""Login sessions: a short-lived access token plus a single-use refresh token, both tied to a
family (one per login; the access token's `sid` claim). Refreshing rotates the refresh token;
presenting one that was already used revokes its whole family, since either the legitimate
client or an attacker holds a stolen copy (RFC 9700, section 4.14.2)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from bson import ObjectId

from app.auth import refresh_repository
from app.auth.repository import find_user_by_id
from app.auth.revocation import Revocation, RevocationCache, RevocationKind, revoke
from app.auth.schemas import TokenOut
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import Unauthorized
from app.core.security import create_access_token, hash_secret, new_refresh_token
from app.core.types import utc_now

log = logging.getLogger(__name__)
INVALID_REFRESH = "Invalid or expired refresh token"


async def start(database: Database, settings: Settings, user_id: ObjectId) -> TokenOut:
    """A new family: the token pair a login returns."""
    return await _issue(database, settings, user_id, uuid.uuid4().hex)


async def _issue(database: Database, settings: Settings, user_id: ObjectId, family_id: str) -> TokenOut:
    now = utc_now()
    refresh_token = new_refresh_token()
    lifetime = timedelta(days=settings.refresh_token_days)
    await refresh_repository.insert_refresh_token(
        database.db, user_id, family_id, hash_secret(refresh_token), now, now + lifetime
    )
    access = create_access_token(
        str(user_id), settings.jwt_secret.get_secret_value(), settings.access_token_minutes, family_id
    )
    return TokenOut(
        access_token=access.token,
        expires_in=access.expires_in,
        refresh_token=refresh_token,
        refresh_expires_in=int(lifetime.total_seconds()),
    )


async def rotate(database: Database, settings: Settings, cache: RevocationCache, refresh_token: str) -> TokenOut:
    """A new pair for a valid refresh token, which stops working. An already used one revokes
    its family; an unknown, expired or revoked one, or one of a disabled or deleted user, is 401."""
    token_hash = hash_secret(refresh_token)
    used = await refresh_repository.use_refresh_token(database.db, token_hash, utc_now())
    if used is None:
        known = await refresh_repository.find_refresh_token(database.db, token_hash)
        if known is not None and known["used_at"] is not None:
            log.warning("refresh token reused; revoking its family", extra={"user_id": str(known["user_id"])})
            await end_families(database, settings, cache, known["user_id"], {known["family_id"]})
        raise Unauthorized(INVALID_REFRESH)
    user = await find_user_by_id(database.db, used["user_id"])
    if user is None or user.get("disabled"):
        await end_families(database, settings, cache, used["user_id"], {used["family_id"]})
        raise Unauthorized(INVALID_REFRESH)
    return await _issue(database, settings, used["user_id"], used["family_id"])


def _family_revocation(settings: Settings, family_id: str, now: datetime) -> Revocation:
    expires_at = now + timedelta(minutes=settings.access_token_minutes)
    return Revocation(RevocationKind.FAMILY, family_id, expires_at)


async def end_families(
    database: Database, settings: Settings, cache: RevocationCache, user_id: ObjectId, family_ids: set[str]
) -> None:
    """Log out these sessions: their refresh tokens are deleted and their access tokens revoked."""
    if not family_ids:
        return
    await refresh_repository.delete_user_families(database.db, user_id, family_ids)
    now = utc_now()
    await revoke(database, cache, [_family_revocation(settings, family_id, now) for family_id in sorted(family_ids)])


async def end_all_but(
    database: Database, settings: Settings, cache: RevocationCache, user_id: ObjectId, keep: str | None
) -> None:
    """Log out every session of the user except `keep` (None: all of them)."""
    families = await refresh_repository.user_family_ids(database.db, user_id)
    families.discard(keep or "")
    await end_families(database, settings, cache, user_id, families)


async def revoke_user(database: Database, settings: Settings, cache: RevocationCache, user_id: ObjectId) -> None:
    """Every access token issued to the user so far stops working, refresh tokens are deleted,
    and cached API keys of the user are checked against the database again."""
    await end_all_but(database, settings, cache, user_id, None)
    now = utc_now()
    expires_at = now + timedelta(minutes=settings.access_token_minutes)
    await revoke(database, cache, [Revocation(RevocationKind.USER, str(user_id), expires_at, before=now)])
