"""Refresh tokens and their families (one family per login).

refresh_families: one document per family: its user, the SHA-256 of the one refresh token that
may be used next (`current_hash`), whether it is revoked, and its absolute end (`expires_at`,
TTL). Rotation is a single conditional update of this document (the presented token must be
the current one, the family live and unexpired), so two concurrent uses of one token cannot
both rotate, and nothing rotates a revoked family. A revoked family stays, revoked, until its
absolute end, which no refresh token of it outlives (RFC 9700, section 4.14.2).

refresh_tokens: one document per issued token, by hash, naming its family: how a presented
token finds its family, and how a token used before is recognised as reuse. Deleted when they
expire (TTL), or with their family on logout."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import REFRESH_FAMILIES, REFRESH_TOKENS, Document


async def insert_family(
    db: AsyncDatabase[Document], family_id: str, user_id: ObjectId, token_hash: str, now: datetime, ends_at: datetime
) -> None:
    document = {
        "family_id": family_id,
        "user_id": user_id,
        "current_hash": token_hash,
        "revoked": False,
        "created_at": now,
        "rotated_at": now,
        "expires_at": ends_at,
    }
    await db[REFRESH_FAMILIES].insert_one(document)


async def advance_family(
    db: AsyncDatabase[Document], family_id: str, old_hash: str, new_hash: str, now: datetime
) -> bool:
    """Make `new_hash` the family's current token if `old_hash` is, and the family is live."""
    result = await db[REFRESH_FAMILIES].update_one(
        {"family_id": family_id, "current_hash": old_hash, "revoked": False, "expires_at": {"$gt": now}},
        {"$set": {"current_hash": new_hash, "rotated_at": now}},
    )
    return result.modified_count == 1


async def find_family(db: AsyncDatabase[Document], family_id: str) -> Document | None:
    return await db[REFRESH_FAMILIES].find_one({"family_id": family_id})


async def revoke_families(db: AsyncDatabase[Document], user_id: ObjectId, family_ids: set[str]) -> None:
    """Revoke the families (kept until their absolute end) and delete their tokens."""
    ids = sorted(family_ids)
    await db[REFRESH_FAMILIES].update_many(
        {"user_id": user_id, "family_id": {"$in": ids}}, {"$set": {"revoked": True, "current_hash": None}}
    )
    await db[REFRESH_TOKENS].delete_many({"user_id": user_id, "family_id": {"$in": ids}})


async def live_family_ids(db: AsyncDatabase[Document], user_id: ObjectId) -> set[str]:
    cursor = db[REFRESH_FAMILIES].find({"user_id": user_id, "revoked": False}, {"family_id": 1, "_id": 0})
    return {str(document["family_id"]) async for document in cursor}


async def insert_refresh_token(
    db: AsyncDatabase[Document],
    user_id: ObjectId,
    family_id: str,
    token_hash: str,
    now: datetime,
    expires_at: datetime,
    family_ends_at: datetime,
) -> None:
    document = {
        "user_id": user_id,
        "family_id": family_id,
        "token_hash": token_hash,
        "created_at": now,
        "expires_at": expires_at,
        "family_ends_at": family_ends_at,
    }
    await db[REFRESH_TOKENS].insert_one(document)


async def find_refresh_token(db: AsyncDatabase[Document], token_hash: str) -> Document | None:
    return await db[REFRESH_TOKENS].find_one({"token_hash": token_hash})
