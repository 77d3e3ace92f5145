"""The refresh_tokens collection: one document per issued refresh token, by the SHA-256 of its
secret, grouped into families (one per login). Used tokens stay until they expire (TTL), so
that presenting one again is recognised as reuse."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import REFRESH_TOKENS, Document


async def insert_refresh_token(
    db: AsyncDatabase[Document],
    user_id: ObjectId,
    family_id: str,
    token_hash: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    document = {
        "user_id": user_id,
        "family_id": family_id,
        "token_hash": token_hash,
        "created_at": now,
        "expires_at": expires_at,
        "used_at": None,
    }
    await db[REFRESH_TOKENS].insert_one(document)


async def use_refresh_token(db: AsyncDatabase[Document], token_hash: str, now: datetime) -> Document | None:
    """Mark an unused, unexpired token used and return it; None otherwise. The update is the
    atomic step (two concurrent uses of one token cannot both modify it); the read after it
    only fetches fields that never change. (Not findAndModify: SecantusDB runs it as a scan of
    the collection, see app.chat.repository.)"""
    result = await db[REFRESH_TOKENS].update_one(
        {"token_hash": token_hash, "used_at": None, "expires_at": {"$gt": now}}, {"$set": {"used_at": now}}
    )
    if result.modified_count != 1:
        return None
    return await find_refresh_token(db, token_hash)


async def find_refresh_token(db: AsyncDatabase[Document], token_hash: str) -> Document | None:
    return await db[REFRESH_TOKENS].find_one({"token_hash": token_hash})


async def delete_family(db: AsyncDatabase[Document], family_id: str) -> None:
    await db[REFRESH_TOKENS].delete_many({"family_id": family_id})


async def user_family_ids(db: AsyncDatabase[Document], user_id: ObjectId) -> set[str]:
    cursor = db[REFRESH_TOKENS].find({"user_id": user_id}, {"family_id": 1, "_id": 0})
    return {str(document["family_id"]) async for document in cursor}


async def delete_user_families(db: AsyncDatabase[Document], user_id: ObjectId, family_ids: set[str]) -> None:
    await db[REFRESH_TOKENS].delete_many({"user_id": user_id, "family_id": {"$in": sorted(family_ids)}})
