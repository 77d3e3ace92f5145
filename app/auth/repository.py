"""The users collection. Names are unique case-insensitively through the unique index on
`username_key` (the lower-cased name), never by looking first."""

from __future__ import annotations

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from app.core.db import USERS, Document
from app.core.errors import Conflict
from app.core.types import utc_now


def username_key(username: str) -> str:
    return username.lower()


async def insert_user(db: AsyncDatabase[Document], username: str, password_hash: str) -> ObjectId:
    document = {
        "username": username,
        "username_key": username_key(username),
        "password_hash": password_hash,
        "created_at": utc_now(),
    }
    try:
        result = await db[USERS].insert_one(document)
    except DuplicateKeyError as exc:
        raise Conflict("Username is already taken") from exc
    user_id: ObjectId = result.inserted_id
    return user_id


async def find_user_by_id(db: AsyncDatabase[Document], user_id: ObjectId) -> Document | None:
    return await db[USERS].find_one({"_id": user_id})


async def find_user_by_username(db: AsyncDatabase[Document], username: str) -> Document | None:
    return await db[USERS].find_one({"username_key": username_key(username)})


async def set_password_hash(db: AsyncDatabase[Document], user_id: ObjectId, password_hash: str) -> None:
    await db[USERS].update_one({"_id": user_id}, {"$set": {"password_hash": password_hash}})
