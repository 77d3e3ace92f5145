"""The api_keys collection: one document per key, by the SHA-256 of the key (unique index).
The key itself is never stored. Expired keys are deleted by the TTL index on expires_at."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import API_KEYS, Document

MAX_KEYS_LISTED = 1000


async def insert_api_key(
    db: AsyncDatabase[Document],
    user_id: ObjectId,
    name: str,
    prefix: str,
    key_hash: str,
    scopes: list[str],
    now: datetime,
    expires_at: datetime | None,
) -> ObjectId:
    document = {
        "user_id": user_id,
        "name": name,
        "prefix": prefix,
        "key_hash": key_hash,
        "scopes": scopes,
        "created_at": now,
        "last_used_at": None,
        "expires_at": expires_at,
    }
    result = await db[API_KEYS].insert_one(document)
    key_id: ObjectId = result.inserted_id
    return key_id


async def find_api_key(db: AsyncDatabase[Document], key_id: ObjectId, user_id: ObjectId) -> Document | None:
    return await db[API_KEYS].find_one({"_id": key_id, "user_id": user_id})


async def user_api_keys(db: AsyncDatabase[Document], user_id: ObjectId) -> list[Document]:
    cursor = db[API_KEYS].find({"user_id": user_id}).sort("created_at", ASCENDING)
    return await cursor.to_list(MAX_KEYS_LISTED)


async def use_api_key(db: AsyncDatabase[Document], key_hash: str, now: datetime) -> Document | None:
    """Look a key up by its hash and stamp last_used_at. (Two commands rather than one
    findAndModify: SecantusDB runs findAndModify as a scan of the collection.)"""
    document = await db[API_KEYS].find_one({"key_hash": key_hash})
    if document is None:
        return None
    await db[API_KEYS].update_one({"_id": document["_id"]}, {"$set": {"last_used_at": now}})
    return document | {"last_used_at": now}


async def delete_api_key(db: AsyncDatabase[Document], key_id: ObjectId, user_id: ObjectId) -> bool:
    result = await db[API_KEYS].delete_one({"_id": key_id, "user_id": user_id})
    return result.deleted_count == 1


async def delete_user_api_keys(db: AsyncDatabase[Document], user_id: ObjectId) -> list[ObjectId]:
    """Delete every key of the user; their ids, to revoke them in the servers' caches."""
    ids = [document["_id"] async for document in db[API_KEYS].find({"user_id": user_id}, {"_id": 1})]
    if ids:
        await db[API_KEYS].delete_many({"user_id": user_id})
    return ids
