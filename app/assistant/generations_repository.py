"""The generations collection: one record per reply being written, holding its lease and its
cancel flag. Unique indexes make "one reply at a time per session" and "at most
MODEL_MAX_PER_USER per user" (numbered slots) hold across server processes."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import GENERATIONS, Document

EXPIRED_BATCH = 100


async def of_session(
    db: AsyncDatabase[Document], session_id: ObjectId, session: AsyncClientSession | None = None
) -> Document | None:
    return await db[GENERATIONS].find_one({"session_id": session_id}, session=session)


async def of_user(db: AsyncDatabase[Document], user_id: ObjectId, session: AsyncClientSession | None) -> list[Document]:
    return await db[GENERATIONS].find({"user_id": user_id}, session=session).to_list(None)


async def of_message(db: AsyncDatabase[Document], message_id: ObjectId) -> Document | None:
    return await db[GENERATIONS].find_one({"message_id": message_id})


async def insert(db: AsyncDatabase[Document], record: Document, session: AsyncClientSession | None) -> None:
    """DuplicateKeyError when the session has one already, or the slot was taken meanwhile."""
    await db[GENERATIONS].insert_one(record, session=session)


async def renew(db: AsyncDatabase[Document], record_ids: list[ObjectId], lease_until: datetime) -> None:
    """Move the leases of these records (one process's replies) in one command."""
    await db[GENERATIONS].update_many({"_id": {"$in": record_ids}}, {"$set": {"lease_until": lease_until}})


async def find(db: AsyncDatabase[Document], record_ids: list[ObjectId]) -> list[Document]:
    """Those of these records that still exist, with their cancel flags."""
    return await db[GENERATIONS].find({"_id": {"$in": record_ids}}).to_list(len(record_ids))


async def request_cancel(db: AsyncDatabase[Document], record_id: ObjectId) -> None:
    await db[GENERATIONS].update_one({"_id": record_id}, {"$set": {"cancel": True}})


async def delete(db: AsyncDatabase[Document], record_id: ObjectId) -> None:
    await db[GENERATIONS].delete_one({"_id": record_id})


async def expired(db: AsyncDatabase[Document], now: datetime) -> list[Document]:
    cursor = db[GENERATIONS].find({"lease_until": {"$lt": now}}).limit(EXPIRED_BATCH)
    return await cursor.to_list(EXPIRED_BATCH)
