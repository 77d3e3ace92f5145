"""The throttles collection: failure counters and fixed-window hit counters, one document per
key (unique index), deleted by the TTL index once they no longer matter."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from app.core.db import THROTTLES, Document


async def find_throttles(db: AsyncDatabase[Document], keys: list[str]) -> list[Document]:
    return await db[THROTTLES].find({"key": {"$in": keys}}).to_list(len(keys))


async def _upsert(db: AsyncDatabase[Document], key: str, update: Document) -> Document:
    """Apply `update` to the key's document, creating it if needed, and return it. Retried once:
    two concurrent upserts of a new key race on the unique index, and the loser then updates
    the winner's document. (An update then a read, not findAndModify: SecantusDB runs that as
    a scan of the collection. A concurrent change between the two only makes a count fresher.)"""
    for attempt in range(2):
        try:
            await db[THROTTLES].update_one({"key": key}, update, upsert=True)
        except DuplicateKeyError:
            if attempt:
                raise
            continue
        document = await db[THROTTLES].find_one({"key": key})
        if document is not None:
            return document
    raise AssertionError("a throttle document vanished right after its update")


async def add_failure(db: AsyncDatabase[Document], key: str, now: datetime, expires_at: datetime) -> Document:
    return await _upsert(
        db,
        key,
        {
            "$inc": {"failures": 1},
            "$setOnInsert": {"window_start": now, "lockouts": 0, "locked_until": None},
            "$max": {"expires_at": expires_at},
        },
    )


async def restart_window(db: AsyncDatabase[Document], key: str, old_start: datetime, now: datetime) -> None:
    """Begin a new counting window with this failure (the last one started too long ago)."""
    await db[THROTTLES].update_one(
        {"key": key, "window_start": old_start}, {"$set": {"failures": 1, "window_start": now}}
    )


async def lock(
    db: AsyncDatabase[Document],
    key: str,
    old_start: datetime,
    now: datetime,
    locked_until: datetime,
    expires_at: datetime,
) -> None:
    await db[THROTTLES].update_one(
        {"key": key, "window_start": old_start},
        {
            "$set": {"failures": 0, "window_start": now, "locked_until": locked_until},
            "$inc": {"lockouts": 1},
            "$max": {"expires_at": expires_at},
        },
    )


async def clear(db: AsyncDatabase[Document], key: str) -> None:
    await db[THROTTLES].delete_one({"key": key})


async def add_hit(db: AsyncDatabase[Document], key: str, expires_at: datetime) -> int:
    document = await _upsert(db, key, {"$inc": {"hits": 1}, "$setOnInsert": {"expires_at": expires_at}})
    return int(document["hits"])
