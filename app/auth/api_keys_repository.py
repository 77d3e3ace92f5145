"""The api_keys collection: one document per key, by the SHA-256 of the key (unique index).
The key itself is never stored. Expired keys are deleted by the TTL index on expires_at.

A user holds at most MAX_KEYS_PER_USER keys: each key takes one of the user's numbered slots,
`slot` = "<user id>:<n>" under a unique index, so two concurrent creations cannot take the
same slot and the count cannot pass the limit (no find-then-insert). Deleting a key, or its
expiry, frees its slot."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from app.core.db import API_KEYS, Document

MAX_KEYS_PER_USER = 50


async def _used_slots(db: AsyncDatabase[Document], user_id: ObjectId, session: AsyncClientSession | None) -> set[str]:
    cursor = db[API_KEYS].find({"user_id": user_id}, {"slot": 1, "_id": 0}, session=session)
    return {str(document.get("slot")) async for document in cursor}


async def insert_api_key(
    db: AsyncDatabase[Document],
    user_id: ObjectId,
    name: str,
    prefix: str,
    key_hash: str,
    scopes: list[str],
    now: datetime,
    expires_at: datetime,
    session: AsyncClientSession | None = None,
) -> ObjectId | None:
    """The new key's id, or None when all of the user's slots are taken. In a transaction
    (`session`), a slot taken meanwhile by another server aborts it: DuplicateKeyError."""
    used = await _used_slots(db, user_id, session)
    for number in range(MAX_KEYS_PER_USER):
        slot = f"{user_id}:{number}"
        if slot in used:
            continue
        document = {
            "user_id": user_id,
            "slot": slot,
            "name": name,
            "prefix": prefix,
            "key_hash": key_hash,
            "scopes": scopes,
            "created_at": now,
            "last_used_at": None,
            "expires_at": expires_at,
        }
        try:
            result = await db[API_KEYS].insert_one(document, session=session)
        except DuplicateKeyError as exc:
            if session is not None or "key_hash" in str(exc):
                raise
            continue  # taken by a concurrent creation: try the next slot
        key_id: ObjectId = result.inserted_id
        return key_id
    return None


async def find_api_key(
    db: AsyncDatabase[Document], key_id: ObjectId, session: AsyncClientSession | None = None
) -> Document | None:
    return await db[API_KEYS].find_one({"_id": key_id}, session=session)


async def user_api_keys_from(
    db: AsyncDatabase[Document], user_id: ObjectId, created_since: datetime | None
) -> list[Document]:
    """The user's keys created at or after `created_since`, oldest first (at most
    MAX_KEYS_PER_USER, and legacy keys made before the limit: the user_created index)."""
    query: Document = {"user_id": user_id}
    if created_since is not None:
        query["created_at"] = {"$gte": created_since}
    cursor = db[API_KEYS].find(query).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
    return await cursor.to_list(None)


async def use_api_key(db: AsyncDatabase[Document], key_hash: str, now: datetime) -> Document | None:
    """Look a key up by its hash and stamp last_used_at. (Two commands rather than one
    findAndModify: SecantusDB runs findAndModify as a scan of the collection.)"""
    document = await db[API_KEYS].find_one({"key_hash": key_hash})
    if document is None:
        return None
    await db[API_KEYS].update_one({"_id": document["_id"]}, {"$set": {"last_used_at": now}})
    return document | {"last_used_at": now}


async def delete_api_key(db: AsyncDatabase[Document], key_id: ObjectId) -> bool:
    """By _id alone (a filter of _id plus another field is a collection scan on SecantusDB):
    the caller has checked the owner."""
    result = await db[API_KEYS].delete_one({"_id": key_id})
    return result.deleted_count == 1


async def delete_user_api_keys(db: AsyncDatabase[Document], user_id: ObjectId) -> list[ObjectId]:
    """Delete every key of the user; their ids, to revoke them in the servers' caches."""
    ids = [document["_id"] async for document in db[API_KEYS].find({"user_id": user_id}, {"_id": 1})]
    if ids:
        await db[API_KEYS].delete_many({"user_id": user_id})
    return ids
