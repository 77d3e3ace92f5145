"""API keys for programs: created and listed by their owner, used as `Authorization: Bearer
<key>`. Only the key's SHA-256 is stored. A key's look-up is cached for API_KEY_CACHE_SECONDS
(one database command per key per server per period, which also stamps last_used_at); a
revoked key, or a disabled or deleted owner, is noticed at once through the revocation cache."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bson import ObjectId

from app.auth import api_keys_repository as repository
from app.auth.principal import AuthenticatedUser
from app.auth.repository import find_user_by_id
from app.auth.revocation import Revocation, RevocationCache, RevocationKind, revoke
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.core.db import Database
from app.core.errors import NotFound, Unauthorized
from app.core.security import api_key_display_prefix, hash_secret, new_api_key
from app.core.types import parse_object_id, utc_now

INVALID_KEY = "Invalid, expired or revoked API key"
KEY_NOT_FOUND = "API key not found"
MAX_CACHED_KEYS = 10_000
# Longer than any cache may hold a key (API_KEY_CACHE_SECONDS is at most 300).
REVOCATION_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class _CachedKey:
    user: AuthenticatedUser
    checked_at: datetime
    valid_until: datetime


class ApiKeyCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self._keys: dict[str, _CachedKey] = {}

    async def authenticate(self, database: Database, revocations: RevocationCache, key: str) -> AuthenticatedUser:
        key_hash = hash_secret(key)
        now = utc_now()
        cached = self._keys.get(key_hash)
        if cached is not None:
            user = cached.user
            if revocations.api_key_revoked(user.token_id):
                del self._keys[key_hash]
                raise Unauthorized(INVALID_KEY)
            if now < cached.valid_until and not revocations.user_revoked_since(str(user.id), cached.checked_at):
                return user
        user, valid_until = await self._load(database, revocations, key_hash, now)
        if self.ttl:
            self._remember(key_hash, _CachedKey(user, now, min(valid_until, now + self.ttl)), now)
        return user

    async def _load(
        self, database: Database, revocations: RevocationCache, key_hash: str, now: datetime
    ) -> tuple[AuthenticatedUser, datetime]:
        document = await repository.use_api_key(database.db, key_hash, now)
        if document is None or revocations.api_key_revoked(str(document["_id"])):
            raise Unauthorized(INVALID_KEY)
        expires_at: datetime | None = document["expires_at"]
        if expires_at is not None and expires_at <= now:
            raise Unauthorized(INVALID_KEY)
        owner = await find_user_by_id(database.db, document["user_id"])
        if owner is None or owner.get("disabled"):
            raise Unauthorized(INVALID_KEY)
        user = AuthenticatedUser(
            id=owner["_id"],
            token_id=str(document["_id"]),
            api_key_id=document["_id"],
            scopes=frozenset(document["scopes"]),
        )
        return user, expires_at or datetime.max.replace(tzinfo=now.tzinfo)

    def _remember(self, key_hash: str, entry: _CachedKey, now: datetime) -> None:
        if len(self._keys) >= MAX_CACHED_KEYS:
            self._keys = {h: e for h, e in self._keys.items() if e.valid_until > now}
            if len(self._keys) >= MAX_CACHED_KEYS:
                self._keys.clear()
        self._keys[key_hash] = entry


async def create_api_key(database: Database, user_id: ObjectId, body: ApiKeyCreate) -> ApiKeyCreated:
    key = new_api_key()
    now = utc_now()
    expires_at = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    prefix, key_hash, scopes = api_key_display_prefix(key), hash_secret(key), [str(scope) for scope in body.scopes]
    key_id = await repository.insert_api_key(database.db, user_id, body.name, prefix, key_hash, scopes, now, expires_at)
    document = await repository.find_api_key(database.db, key_id, user_id)
    if document is None:  # revoked between the insert and this read
        raise NotFound(KEY_NOT_FOUND)
    return ApiKeyCreated.model_validate({**document, "key": key})


async def list_api_keys(database: Database, user_id: ObjectId) -> list[ApiKeyOut]:
    return [ApiKeyOut.model_validate(document) for document in await repository.user_api_keys(database.db, user_id)]


async def delete_api_key(database: Database, cache: RevocationCache, user_id: ObjectId, raw_key_id: str) -> None:
    try:
        key_id = parse_object_id(raw_key_id)
    except ValueError as exc:
        raise NotFound(KEY_NOT_FOUND) from exc
    if not await repository.delete_api_key(database.db, key_id, user_id):
        raise NotFound(KEY_NOT_FOUND)
    await revoke_keys(database, cache, [key_id])


async def delete_user_keys(database: Database, cache: RevocationCache, user_id: ObjectId) -> None:
    await revoke_keys(database, cache, await repository.delete_user_api_keys(database.db, user_id))


async def revoke_keys(database: Database, cache: RevocationCache, key_ids: list[ObjectId]) -> None:
    expires_at = utc_now() + REVOCATION_LIFETIME
    await revoke(database, cache, [Revocation(RevocationKind.API_KEY, str(key_id), expires_at) for key_id in key_ids])
