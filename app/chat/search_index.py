"""The writes of the search index (search_message_terms, search_term_counts) and the indexer's
state (search_indexer): the lease one server process holds to index, and its durable position.

An entry's `_id` is its message's `_id`: indexing a message twice (a batch replayed after a
crash, a rebuild racing the change stream) is a duplicate key, ignored, never a second entry.
"""

from __future__ import annotations

import zlib
from collections import Counter
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from app.chat.terms import text_terms
from app.core.db import MESSAGE_TERMS, MESSAGES, SEARCH_INDEXER, TERM_COUNTS, Document

DUPLICATE_KEY = 11000
TOO_LARGE = (10334, 17419)  # BSONObjectTooLarge, and a document grown too large by an update
TERM_BUCKETS = 32
INDEXER = "messages"


def entry_of(message: Document) -> Document:
    """The index entry of a stored message."""
    return {
        "_id": message["_id"],
        "user_id": message["user_id"],
        "session_id": message["session_id"],
        "created_at": message["created_at"],
        "terms": text_terms(message.get("content") or ""),
    }


async def insert_entries(db: AsyncDatabase[Document], entries: list[Document]) -> list[Document]:
    """Insert the entries not there yet; returns those it inserted."""
    if not entries:
        return []
    failed: set[int] = set()
    try:
        await db[MESSAGE_TERMS].insert_many(entries, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        failed = {int(error["index"]) for error in errors}
    return [entry for index, entry in enumerate(entries) if index not in failed]


def term_count_updates(entries: list[Document]) -> list[UpdateOne]:
    """Add how many of `entries` hold each term to the user's counts: one update per user and
    bucket of terms (an upsert per term took ~5 ms on SecantusDB; 32 buckets' updates for
    2,000 terms ~0.25 s)."""
    increments: dict[tuple[ObjectId, int], Counter[str]] = {}
    for entry in entries:
        for term in entry["terms"]:
            increments.setdefault((entry["user_id"], term_bucket(term)), Counter())[f"counts.{term}"] += 1
    return [
        UpdateOne({"user_id": user_id, "bucket": bucket}, {"$inc": dict(counted)}, upsert=True)
        for (user_id, bucket), counted in increments.items()
    ]


def term_bucket(term: str) -> int:
    return zlib.crc32(term.encode()) % TERM_BUCKETS


async def count_terms(db: AsyncDatabase[Document], updates: list[UpdateOne]) -> None:
    """Apply term_count_updates. Two upserts of one new bucket may race to insert it (a
    rebuild next to a former holder still writing): the loser is retried once, an update
    then. A bucket grown past the document size limit (a vocabulary of millions) stops
    counting: the counts only choose which term drives a search."""
    if not updates:
        return
    try:
        await db[TERM_COUNTS].bulk_write(updates, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        retry = [updates[int(error["index"])] for error in errors if error.get("code") == DUPLICATE_KEY]
        if any(error.get("code") not in (DUPLICATE_KEY, *TOO_LARGE) for error in errors):
            raise
        if retry:
            await db[TERM_COUNTS].bulk_write(retry, ordered=False)


async def forget_user_counts(db: AsyncDatabase[Document], user_id: ObjectId) -> None:
    """A deleted user's term counts: the words they wrote are not kept."""
    await db[TERM_COUNTS].delete_many({"user_id": user_id})


async def remove_entries(db: AsyncDatabase[Document], message_ids: list[ObjectId]) -> None:
    if message_ids:
        await db[MESSAGE_TERMS].delete_many({"_id": {"$in": message_ids}})


async def messages_after(
    db: AsyncDatabase[Document], after: ObjectId | None, before: ObjectId, limit: int
) -> list[Document]:
    """Stored messages with after < _id < before, by _id, at most `limit` (a rebuild's scan;
    the range is kept narrow, as SecantusDB reads every entry a sorted range matches)."""
    bounds: Document = {"$lt": before} if after is None else {"$gt": after, "$lt": before}
    fields = {"user_id": 1, "session_id": 1, "created_at": 1, "content": 1}
    cursor = db[MESSAGES].find({"_id": bounds}, fields).sort("_id", 1).limit(limit)
    return await cursor.to_list(limit)


async def newest_message_id(db: AsyncDatabase[Document]) -> ObjectId | None:
    document = await db[MESSAGES].find_one({}, {"_id": 1}, sort=[("_id", -1)])
    return None if document is None else document["_id"]


async def take_lease(db: AsyncDatabase[Document], holder: str, now: datetime, expires_at: datetime) -> Document | None:
    """The indexer's state when `holder` holds its lease now (renewed, or taken over from a
    holder whose lease ran out); None when another holder's lease is still running."""
    claim = {"$or": [{"holder": holder}, {"expires_at": {"$lt": now}}]}
    try:
        return await db[SEARCH_INDEXER].find_one_and_update(
            {"name": INDEXER, **claim},
            {"$set": {"holder": holder, "expires_at": expires_at}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        return None


async def save_state(db: AsyncDatabase[Document], holder: str, expires_at: datetime, state: Document) -> bool:
    """Record the position (and progress) and renew the lease, if `holder` still holds it."""
    result = await db[SEARCH_INDEXER].update_one(
        {"name": INDEXER, "holder": holder}, {"$set": {**state, "expires_at": expires_at}}
    )
    return result.matched_count == 1


async def release_lease(db: AsyncDatabase[Document], holder: str, now: datetime) -> None:
    """Let another server take over at once (on a clean stop)."""
    await db[SEARCH_INDEXER].update_one({"name": INDEXER, "holder": holder}, {"$set": {"expires_at": now}})


async def indexer_state(db: AsyncDatabase[Document]) -> dict[str, Any] | None:
    return await db[SEARCH_INDEXER].find_one({"name": INDEXER})
