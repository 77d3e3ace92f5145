"""The writes of the search index (search_message_terms, search_term_counts) and the indexer's
state (search_indexer): the lease one server process holds to index, and its durable position.

An entry's `_id` is its message's `_id`: indexing a message twice (a batch replayed after a
crash, a rebuild racing the change stream) is a duplicate key, ignored, never a second entry.
"""

from __future__ import annotations

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


async def add_entries(db: AsyncDatabase[Document], messages: list[Document]) -> int:
    """Index `messages` (those indexed already are left as they are) and count the terms of
    the new entries per user; returns how many entries were added."""
    if not messages:
        return 0
    entries = [entry_of(message) for message in messages]
    failed: set[int] = set()
    try:
        await db[MESSAGE_TERMS].insert_many(entries, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        failed = {int(error["index"]) for error in errors}
    added = [entry for index, entry in enumerate(entries) if index not in failed]
    counts = Counter((entry["user_id"], term) for entry in added for term in entry["terms"])
    if counts:
        updates = [
            UpdateOne({"user_id": user_id, "term": term}, {"$inc": {"count": count}}, upsert=True)
            for (user_id, term), count in counts.items()
        ]
        await _upsert_counts(db, updates)
    return len(added)


async def _upsert_counts(db: AsyncDatabase[Document], updates: list[UpdateOne]) -> None:
    """Two upserts of one new (user, term) may race to insert it (a rebuild next to a former
    holder still writing): the loser's duplicate key is retried once as an update."""
    try:
        await db[TERM_COUNTS].bulk_write(updates, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        await db[TERM_COUNTS].bulk_write([updates[int(error["index"])] for error in errors], ordered=False)


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
