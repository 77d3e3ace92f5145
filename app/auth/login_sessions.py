"""Login sessions: a short-lived access token plus a single-use refresh token, both tied to a
family (one per login; the access token's `sid` claim). Refreshing rotates the refresh token;
presenting one that was already used revokes its whole family, since either the legitimate
client or an attacker holds a stolen copy (RFC 9700, section 4.14.2).

A family lives at most REFRESH_FAMILY_MAX_DAYS from its login, whatever its refreshes, and
rotates at most REFRESH_MAX_PER_HOUR times per clock hour (counted atomically; past it 429).
Rotation is one conditional update of the family (refresh_repository), so a revoked family,
including one revoked while a concurrent refresh was under way, never mints again."""

from __future__ import annotations

import logging
import math
import uuid
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from app.auth import refresh_repository
from app.auth import throttle_repository as throttles
from app.auth.repository import find_user_by_id
from app.auth.revocation import Revocation, RevocationCache, RevocationKind, revoke
from app.auth.schemas import TokenOut
from app.core.audit import audit
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import TooManyRequests, Unauthorized
from app.core.security import create_access_token, hash_secret, new_refresh_token
from app.core.types import utc_now

log = logging.getLogger(__name__)
INVALID_REFRESH = "Invalid or expired refresh token"
TOO_MANY_REFRESHES = "Too many refreshes of this session; try again later"
ROTATION_WINDOW_SECONDS = 3600
# A family revocation outlives the access tokens of the family by this much, so that one
# minted by a refresh that raced the revocation is covered too.
REVOCATION_MARGIN = timedelta(minutes=1)


async def start(database: Database, settings: Settings, user_id: ObjectId) -> TokenOut:
    """A new family: the token pair a login returns."""
    now = utc_now()
    family_id = uuid.uuid4().hex
    refresh_token = new_refresh_token()
    token_hash = hash_secret(refresh_token)
    ends_at = now + timedelta(days=settings.refresh_family_max_days)
    await refresh_repository.insert_family(database.db, family_id, user_id, token_hash, now, ends_at)
    return await _issue(database, settings, user_id, family_id, refresh_token, now, ends_at)


async def _issue(
    database: Database,
    settings: Settings,
    user_id: ObjectId,
    family_id: str,
    refresh_token: str,
    now: datetime,
    family_ends_at: datetime,
) -> TokenOut:
    expires_at = min(now + timedelta(days=settings.refresh_token_days), family_ends_at)
    await refresh_repository.insert_refresh_token(
        database.db, user_id, family_id, hash_secret(refresh_token), now, expires_at, family_ends_at
    )
    access = create_access_token(
        str(user_id), settings.jwt_secret.get_secret_value(), settings.access_token_minutes, family_id
    )
    return TokenOut(
        access_token=access.token,
        expires_in=access.expires_in,
        refresh_token=refresh_token,
        refresh_expires_in=max(0, math.floor((expires_at - now).total_seconds())),
    )


async def rotate(database: Database, settings: Settings, cache: RevocationCache, refresh_token: str) -> TokenOut:
    """A new pair for a valid refresh token, which stops working. An already used one revokes
    its family; an unknown, expired or revoked one, or one of a disabled or deleted user, is 401."""
    now = utc_now()
    token_hash = hash_secret(refresh_token)
    token = await refresh_repository.find_refresh_token(database.db, token_hash)
    if token is None or token["expires_at"] <= now:
        raise Unauthorized(INVALID_REFRESH)
    user_id: ObjectId = token["user_id"]
    family_id = str(token["family_id"])
    await _count_rotation(database, settings, family_id, now)
    new_token = new_refresh_token()
    if not await refresh_repository.advance_family(database.db, family_id, token_hash, hash_secret(new_token), now):
        family = await refresh_repository.find_family(database.db, family_id)
        if family is not None and not family["revoked"] and family["current_hash"] != token_hash:
            log.warning("refresh token reused; revoking its family", extra={"user_id": str(user_id)})
            audit("refresh.reused", user_id=str(user_id), family_id=family_id)
            await end_families(database, settings, cache, user_id, {family_id})
        raise Unauthorized(INVALID_REFRESH)
    user = await find_user_by_id(database.db, user_id)
    if user is None or user.get("disabled"):
        await end_families(database, settings, cache, user_id, {family_id})
        raise Unauthorized(INVALID_REFRESH)
    family_ends_at: datetime = token["family_ends_at"]
    return await _issue(database, settings, user_id, family_id, new_token, now, family_ends_at)


async def _count_rotation(database: Database, settings: Settings, family_id: str, now: datetime) -> None:
    bucket = int(now.timestamp()) // ROTATION_WINDOW_SECONDS
    window_end = datetime.fromtimestamp((bucket + 1) * ROTATION_WINDOW_SECONDS, UTC)
    key = f"refresh:{family_id}:{bucket}"
    if not await throttles.add_guarded_hit(database.db, key, settings.refresh_max_per_hour, window_end):
        raise TooManyRequests(math.ceil((window_end - now).total_seconds()), TOO_MANY_REFRESHES)


def _family_revocation(settings: Settings, family_id: str, now: datetime) -> Revocation:
    expires_at = now + timedelta(minutes=settings.access_token_minutes) + REVOCATION_MARGIN
    return Revocation(RevocationKind.FAMILY, family_id, expires_at)


async def end_families(
    database: Database, settings: Settings, cache: RevocationCache, user_id: ObjectId, family_ids: set[str]
) -> None:
    """Log out these sessions: their families are revoked (for good), their refresh tokens
    deleted and their access tokens revoked."""
    if not family_ids:
        return
    await refresh_repository.revoke_families(database.db, user_id, family_ids)
    now = utc_now()
    await revoke(database, cache, [_family_revocation(settings, family_id, now) for family_id in sorted(family_ids)])


async def end_all_but(
    database: Database, settings: Settings, cache: RevocationCache, user_id: ObjectId, keep: str | None
) -> None:
    """Log out every session of the user except `keep` (None: all of them)."""
    families = await refresh_repository.live_family_ids(database.db, user_id)
    families.discard(keep or "")
    await end_families(database, settings, cache, user_id, families)


async def revoke_user(database: Database, settings: Settings, cache: RevocationCache, user_id: ObjectId) -> None:
    """Every access token issued to the user so far stops working, refresh tokens are deleted,
    and cached API keys of the user are checked against the database again."""
    await end_all_but(database, settings, cache, user_id, None)
    now = utc_now()
    expires_at = now + timedelta(minutes=settings.access_token_minutes)
    await revoke(database, cache, [Revocation(RevocationKind.USER, str(user_id), expires_at, before=now)])
