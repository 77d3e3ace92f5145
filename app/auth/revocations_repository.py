"""The revocations collection: an append-only log of what stopped being valid and when, read
by every server's poller (app.auth.revocation). Entries expire (TTL index) once nothing they
revoke can still be presented."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import REVOCATIONS, Document


async def insert_revocations(db: AsyncDatabase[Document], documents: list[Document]) -> None:
    if documents:
        await db[REVOCATIONS].insert_many(documents, ordered=False)


async def revocations_created_since(db: AsyncDatabase[Document], since: datetime) -> list[Document]:
    """Entries written at or after `since` (the created_at index)."""
    return await db[REVOCATIONS].find({"created_at": {"$gte": since}}).to_list(None)


async def live_revocations(db: AsyncDatabase[Document], now: datetime) -> list[Document]:
    """Every entry still in force (the TTL index on expires_at)."""
    return await db[REVOCATIONS].find({"expires_at": {"$gt": now}}).to_list(None)
