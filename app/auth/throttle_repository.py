"""The throttles collection: attempt counters and fixed-window hit counters, one document per
key (unique index), deleted by the TTL index once they no longer matter.

A login attempt is counted before its password is checked, by a conditional `$inc` that only
matches while the counter is under its limit and the key is not locked, so concurrent attempts
cannot get past the limit: the database decides which ones fit. (Conditional updates and
inserts, not findAndModify: SecantusDB runs that as a scan of the collection.)"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from app.core.db import THROTTLES, Document


def _not_locked(now: datetime) -> Document:
    return {"$or": [{"locked_until": None}, {"locked_until": {"$lte": now}}]}


def refuses(document: Document, limit: int, window: timedelta, now: datetime) -> bool:
    locked_until: datetime | None = document.get("locked_until")
    if locked_until is not None and locked_until > now:
        return True
    return bool(document["window_start"] > now - window and document["failures"] >= limit)


async def reserve_attempt(
    db: AsyncDatabase[Document], key: str, limit: int, window: timedelta, now: datetime, expires_at: datetime
) -> Document | None:
    """Count one attempt against `key`. None when it was counted; otherwise the key's document
    (locked, or at its limit within the current window) for the caller to refuse with."""
    for _ in range(5):
        counted = await db[THROTTLES].update_one(
            {"key": key, "window_start": {"$gt": now - window}, "failures": {"$lt": limit}, **_not_locked(now)},
            {"$inc": {"failures": 1}, "$max": {"expires_at": expires_at}},
        )
        if counted.matched_count:
            return None
        restarted = await db[THROTTLES].update_one(
            {"key": key, "window_start": {"$lte": now - window}, **_not_locked(now)},
            {"$set": {"failures": 1, "window_start": now}, "$max": {"expires_at": expires_at}},
        )
        if restarted.matched_count:
            return None
        existing = await db[THROTTLES].find_one({"key": key})
        if existing is not None:
            if refuses(existing, limit, window, now):
                return existing
            continue  # changed between the updates and this read: count again
        document = {
            "key": key,
            "failures": 1,
            "window_start": now,
            "lockouts": 0,
            "locked_until": None,
            "expires_at": expires_at,
        }
        try:
            await db[THROTTLES].insert_one(document)
            return None
        except DuplicateKeyError:
            continue  # a concurrent attempt created it: count against that one
    # The key kept changing under heavy concurrency: refuse this attempt rather than guess.
    return {"key": key, "failures": limit, "window_start": now, "locked_until": None}


async def release_attempt(db: AsyncDatabase[Document], key: str) -> None:
    """Uncount an attempt that did not fail (it succeeded, or never checked a password)."""
    await db[THROTTLES].update_one({"key": key, "failures": {"$gt": 0}}, {"$inc": {"failures": -1}})


async def find_throttles(db: AsyncDatabase[Document], keys: list[str]) -> list[Document]:
    return await db[THROTTLES].find({"key": {"$in": keys}}).to_list(len(keys))


async def lock(
    db: AsyncDatabase[Document],
    key: str,
    old_start: datetime,
    now: datetime,
    locked_until: datetime,
    expires_at: datetime,
) -> bool:
    """Lock the key until `locked_until` unless another failure locked it first."""
    result = await db[THROTTLES].update_one(
        {"key": key, "window_start": old_start, **_not_locked(now)},
        {
            "$set": {"failures": 0, "window_start": now, "locked_until": locked_until},
            "$inc": {"lockouts": 1},
            "$max": {"expires_at": expires_at},
        },
    )
    return result.modified_count == 1


async def clear(db: AsyncDatabase[Document], key: str) -> None:
    await db[THROTTLES].delete_one({"key": key})


async def add_hit(db: AsyncDatabase[Document], key: str, expires_at: datetime) -> int:
    """Count a hit in a fixed window; the count after it. Retried once: two concurrent upserts
    of a new key race on the unique index, and the loser then updates the winner's document."""
    for attempt in range(2):
        try:
            await db[THROTTLES].update_one(
                {"key": key}, {"$inc": {"hits": 1}, "$setOnInsert": {"expires_at": expires_at}}, upsert=True
            )
        except DuplicateKeyError:
            if attempt:
                raise
            continue
        document = await db[THROTTLES].find_one({"key": key})
        if document is not None:
            return int(document["hits"])
    raise AssertionError("a throttle document vanished right after its update")


async def add_guarded_hit(db: AsyncDatabase[Document], key: str, limit: int, expires_at: datetime) -> bool:
    """Count a hit in a fixed window only while the count is under `limit`; False when full.
    One conditional update (or a first insert): concurrent hits cannot pass the limit."""
    for _ in range(2):
        counted = await db[THROTTLES].update_one({"key": key, "hits": {"$lt": limit}}, {"$inc": {"hits": 1}})
        if counted.matched_count:
            return True
        try:
            await db[THROTTLES].insert_one({"key": key, "hits": 1, "expires_at": expires_at})
            return True
        except DuplicateKeyError:
            continue
    return False
