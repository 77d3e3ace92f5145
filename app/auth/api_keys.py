"""API keys for programs: created (with the owner's password) and listed by their owner, used
as `Authorization: Bearer <key>`. Only the key's SHA-256 is stored. Every key expires
(API_KEY_DEFAULT_DAYS unless asked otherwise, at most API_KEY_MAX_DAYS); a user holds at
most MAX_KEYS_PER_USER; a password change or an admin password reset revokes them all.

A key's look-up is cached for API_KEY_CACHE_SECONDS (one database command per key per server
per period, which also stamps last_used_at); a revoked key, or a disabled or deleted owner, is
noticed at once through the revocation cache."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from app.auth import api_keys_repository as repository
from app.auth.principal import AuthenticatedUser
from app.auth.repository import find_user_by_id
from app.auth.revocation import Revocation, RevocationCache, RevocationKind, revoke
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.core.audit import audit
from app.core.config import Settings
from app.core.cursors import CursorCodec
from app.core.db import Database, Document
from app.core.errors import BadRequest, Conflict, NotFound, Unauthorized
from app.core.idempotency import IdempotentRequest, StoredResponse, run_once
from app.core.pages import Page
from app.core.security import api_key_display_prefix, hash_secret, new_api_key
from app.core.types import parse_object_id, utc_now

INVALID_KEY = "Invalid, expired or revoked API key"
KEY_NOT_FOUND = "API key not found"
TOO_MANY_KEYS = f"You have {repository.MAX_KEYS_PER_USER} API keys already; revoke one first"
CONCURRENT_CREATE = "Another API key of yours was being created at the same moment; try again"
KEYS_CURSOR = "api-keys"
MAX_CACHED_KEYS = 10_000
# Longer than any cache may hold a key (API_KEY_CACHE_SECONDS is at most 300).
REVOCATION_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class _CachedKey:
    user: AuthenticatedUser
    checked_at: datetime
    valid_until: datetime


class ApiKeyCache:
    def __init__(self, ttl_seconds: float, max_days: int) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_lifetime = timedelta(days=max_days)
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
        # A key made before keys expired lives at most the longest lifetime from its creation.
        expires_at: datetime = document["expires_at"] or document["created_at"] + self.max_lifetime
        if expires_at <= now:
            raise Unauthorized(INVALID_KEY)
        owner = await find_user_by_id(database.db, document["user_id"])
        if owner is None or owner.get("disabled"):
            raise Unauthorized(INVALID_KEY)
        user = AuthenticatedUser(
            id=owner["_id"],
            token_id=str(document["_id"]),
            expires_at=expires_at,
            api_key_id=document["_id"],
            scopes=frozenset(document["scopes"]),
        )
        return user, expires_at

    def _remember(self, key_hash: str, entry: _CachedKey, now: datetime) -> None:
        if len(self._keys) >= MAX_CACHED_KEYS:
            self._keys = {h: e for h, e in self._keys.items() if e.valid_until > now}
            if len(self._keys) >= MAX_CACHED_KEYS:
                self._keys.clear()
        self._keys[key_hash] = entry


async def create_api_key(
    database: Database, settings: Settings, user_id: ObjectId, body: ApiKeyCreate, idempotency: IdempotentRequest | None
) -> StoredResponse:
    """201 with the new key. The caller has checked the owner's current password.

    With an Idempotency-Key the key is inserted in the transaction that completes the key's
    record, whose stored response (it holds the key) is sealed: a retry gets the same key back,
    and a crash leaves either both or neither."""
    days = body.expires_in_days or settings.api_key_default_days
    if days > settings.api_key_max_days:
        raise BadRequest(f"expires_in_days must be at most {settings.api_key_max_days}")
    scopes = [str(scope) for scope in body.scopes]

    async def create(session: AsyncClientSession | None) -> StoredResponse:
        key, now = new_api_key(), utc_now()
        prefix, key_hash = api_key_display_prefix(key), hash_secret(key)
        expires_at = now + timedelta(days=days)
        try:
            key_id = await repository.insert_api_key(
                database.db, user_id, body.name, prefix, key_hash, scopes, now, expires_at, session
            )
        except DuplicateKeyError as exc:  # another server took the slot inside our transaction
            raise Conflict(CONCURRENT_CREATE) from exc
        if key_id is None:
            raise Conflict(TOO_MANY_KEYS)
        document = await repository.find_api_key(database.db, key_id, session)
        if document is None:  # revoked between the insert and this read
            raise NotFound(KEY_NOT_FOUND)
        return StoredResponse(201, ApiKeyCreated.model_validate({**document, "key": key}).model_dump_json())

    response = await run_once(
        database, user_id, idempotency, create, (KEYS_CURSOR, user_id), transactional=False, sealed=True
    )
    if not response.replayed:
        key_id = json.loads(response.body)["_id"]
        audit("api_key.created", user_id=str(user_id), key_id=key_id, scopes=scopes, expires_in_days=days)
    return response


async def list_api_keys(
    database: Database, codec: CursorCodec, user_id: ObjectId, limit: int, cursor: str | None
) -> Page[ApiKeyOut]:
    """The user's keys, oldest first, a page at a time (keyset: created_at, then _id)."""
    after: tuple[datetime, ObjectId] | None = None
    if cursor is not None:
        values = codec.decode(KEYS_CURSOR, cursor)
        try:
            after = (datetime.fromisoformat(values["created_at"]), parse_object_id(values["id"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRequest("Invalid cursor") from exc
    documents = await repository.user_api_keys_from(database.db, user_id, after[0] if after else None)
    if after is not None:
        documents = [d for d in documents if (d["created_at"], d["_id"]) > after]
    items = documents[:limit]
    next_cursor = None
    if len(documents) > limit:
        last = items[-1]
        next_cursor = codec.encode(KEYS_CURSOR, {"created_at": last["created_at"].isoformat(), "id": str(last["_id"])})
    return Page(items=[ApiKeyOut.model_validate(document) for document in items], next_cursor=next_cursor)


async def delete_api_key(database: Database, cache: RevocationCache, user_id: ObjectId, raw_key_id: str) -> None:
    try:
        key_id = parse_object_id(raw_key_id)
    except ValueError as exc:
        raise NotFound(KEY_NOT_FOUND) from exc
    document: Document | None = await repository.find_api_key(database.db, key_id)
    if document is None or document["user_id"] != user_id or not await repository.delete_api_key(database.db, key_id):
        raise NotFound(KEY_NOT_FOUND)
    await revoke_keys(database, cache, [key_id])
    audit("api_key.revoked", user_id=str(user_id), key_id=str(key_id), by="owner")


async def delete_user_keys(database: Database, cache: RevocationCache, user_id: ObjectId, reason: str = "") -> int:
    """Delete and revoke every key of the user; how many there were."""
    key_ids = await repository.delete_user_api_keys(database.db, user_id)
    await revoke_keys(database, cache, key_ids)
    for key_id in key_ids:
        audit("api_key.revoked", user_id=str(user_id), key_id=str(key_id), by=reason or "system")
    return len(key_ids)


async def revoke_keys(database: Database, cache: RevocationCache, key_ids: list[ObjectId]) -> None:
    expires_at = utc_now() + REVOCATION_LIFETIME
    await revoke(database, cache, [Revocation(RevocationKind.API_KEY, str(key_id), expires_at) for key_id in key_ids])
