"""The users collection. Names are unique case-insensitively through the unique index on
`username_key` (the lower-cased name), never by looking first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from app.core.db import USERS, Document
from app.core.errors import Conflict
from app.core.types import utc_now

# The highest code point: every key starting with a prefix sorts below prefix + this.
_PREFIX_END = "\U0010ffff"


def username_key(username: str) -> str:
    return username.lower()


async def insert_user(db: AsyncDatabase[Document], username: str, password_hash: str, role: str = "user") -> ObjectId:
    document = {
        "username": username,
        "username_key": username_key(username),
        "password_hash": password_hash,
        "role": role,
        "disabled": False,
        "created_at": utc_now(),
        "last_login_at": None,
    }
    try:
        result = await db[USERS].insert_one(document)
    except DuplicateKeyError as exc:
        raise Conflict("Username is already taken") from exc
    user_id: ObjectId = result.inserted_id
    return user_id


async def find_user_by_id(db: AsyncDatabase[Document], user_id: ObjectId) -> Document | None:
    return await db[USERS].find_one({"_id": user_id})


async def existing_user_ids(db: AsyncDatabase[Document], user_ids: list[ObjectId]) -> set[ObjectId]:
    if not user_ids:
        return set()
    return {document["_id"] async for document in db[USERS].find({"_id": {"$in": user_ids}}, {"_id": 1})}


async def find_user_by_username(db: AsyncDatabase[Document], username: str) -> Document | None:
    return await db[USERS].find_one({"username_key": username_key(username)})


async def set_password_hash(db: AsyncDatabase[Document], user_id: ObjectId, password_hash: str) -> bool:
    result = await db[USERS].update_one({"_id": user_id}, {"$set": {"password_hash": password_hash}})
    return result.matched_count == 1


async def record_login(
    db: AsyncDatabase[Document], user_id: ObjectId, now: datetime, new_password_hash: str | None
) -> None:
    """Stamp the login time, and store a rehashed password (outdated parameters) in the same command."""
    changes: dict[str, Any] = {"last_login_at": now}
    if new_password_hash:
        changes["password_hash"] = new_password_hash
    await db[USERS].update_one({"_id": user_id}, {"$set": changes})


async def update_user(db: AsyncDatabase[Document], user_id: ObjectId, changes: dict[str, Any]) -> Document | None:
    """Set typed fields (`disabled`, `role`) and return the stored document, None when missing."""
    result = await db[USERS].update_one({"_id": user_id}, {"$set": changes})
    return await find_user_by_id(db, user_id) if result.matched_count else None


async def delete_user(db: AsyncDatabase[Document], user_id: ObjectId) -> bool:
    result = await db[USERS].delete_one({"_id": user_id})
    return result.deleted_count == 1


async def users_by_name(db: AsyncDatabase[Document], prefix: str, after_key: str | None, limit: int) -> list[Document]:
    """Users whose lower-cased name starts with `prefix`, in name order, after `after_key`:
    one bounded range of the unique username index."""
    key_prefix = username_key(prefix)
    key_range: dict[str, str] = {"$gte": key_prefix, "$lt": key_prefix + _PREFIX_END}
    if after_key is not None and after_key >= key_prefix:
        key_range = {"$gt": after_key, "$lt": key_range["$lt"]}
    cursor = db[USERS].find({"username_key": key_range}).sort("username_key", ASCENDING).limit(limit)
    return await cursor.to_list(limit)


async def count_users(db: AsyncDatabase[Document]) -> int:
    return await db[USERS].estimated_document_count()


async def count_users_created_since(db: AsyncDatabase[Document], since: datetime) -> int:
    return await db[USERS].count_documents({"created_at": {"$gte": since}})


async def count_users_logged_in_since(db: AsyncDatabase[Document], since: datetime) -> int:
    return await db[USERS].count_documents({"last_login_at": {"$gte": since}})
