"""The writes of the search index (search_message_terms, search_term_counts and their deltas)
and the indexer's state (search_indexer): the lease one server process holds to index, and its
durable position.

An entry's `_id` is its message's `_id`: indexing a message twice (a batch replayed after a
crash, a rebuild racing the change stream) is a duplicate key, ignored, never a second entry.
"""

from __future__ import annotations

import zlib
from collections import Counter
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DocumentTooLarge, DuplicateKeyError, WriteError

from app.chat.terms import text_terms
from app.core.db import MESSAGE_TERMS, MESSAGES, SEARCH_INDEXER, TERM_COUNT_DELTAS, TERM_COUNTS, Document

DUPLICATE_KEY = 11000
TOO_LARGE = (10334, 17419)  # BSONObjectTooLarge, and a document grown too large by an update
TERM_BUCKETS = 32
INDEXER = "messages"
# On a bucket of counts: its `newest` is at least the time of every entry of its terms, as it
# was counted since the bucket was created (a bucket counted before `newest` was kept lacks
# this mark, and a full bucket loses it).
NEWEST_KNOWN = "newest_of_all"


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


def count_deltas(entries: list[Document]) -> list[Document]:
    """How many of `entries` hold each term: a delta document per user and bucket of terms,
    added to the counts by search until merge_count_deltas folds it in. `newest` is the
    newest entry's time: search starts reading a term's entries there (NEWEST_KNOWN)."""
    increments: dict[tuple[ObjectId, int], Counter[str]] = {}
    newest: dict[tuple[ObjectId, int], datetime] = {}
    for entry in entries:
        for term in entry["terms"]:
            key = (entry["user_id"], term_bucket(term))
            increments.setdefault(key, Counter())[term] += 1
            newest[key] = max(newest.get(key, entry["created_at"]), entry["created_at"])
    return [
        {"user_id": user_id, "bucket": bucket, "counts": dict(counted), "newest": newest[(user_id, bucket)]}
        for (user_id, bucket), counted in increments.items()
    ]


def term_bucket(term: str) -> int:
    return zlib.crc32(term.encode()) % TERM_BUCKETS


async def add_count_deltas(db: AsyncDatabase[Document], deltas: list[Document]) -> None:
    if deltas:
        await db[TERM_COUNT_DELTAS].insert_many(deltas, ordered=False)


async def unmerged_buckets(db: AsyncDatabase[Document]) -> set[tuple[ObjectId, int]]:
    """The (user, bucket) pairs that have deltas (a few per pair: they are merged as they come)."""
    cursor = db[TERM_COUNT_DELTAS].find({}, {"user_id": 1, "bucket": 1}).hint("user_bucket")
    return {(document["user_id"], document["bucket"]) async for document in cursor}


async def merge_count_deltas(
    db: AsyncDatabase[Document], user_id: ObjectId, buckets: list[int], session: AsyncClientSession | None
) -> None:
    """Fold the buckets' deltas into their counts, in the transaction `session`: one read of
    the deltas, one rewrite of each bucket (~13 ms for 3,000 terms on SecantusDB) for all the
    batches since the last merge, one delete. BucketFull when a bucket cannot grow past the
    document size limit (a vocabulary of millions)."""
    query = {"user_id": user_id, "bucket": {"$in": buckets}}
    deltas = await db[TERM_COUNT_DELTAS].find(query, session=session).to_list()
    totals: dict[int, Counter[str]] = {}
    newest: dict[int, datetime] = {}
    undated: set[int] = set()  # a delta written before `newest` was kept
    for delta in deltas:
        bucket = delta["bucket"]
        totals.setdefault(bucket, Counter()).update(delta["counts"])
        if "newest" in delta:
            newest[bucket] = max(newest.get(bucket, delta["newest"]), delta["newest"])
        else:
            undated.add(bucket)
    for bucket, total in totals.items():
        update: Document = {"$inc": {f"counts.{term}": count for term, count in total.items()}}
        if bucket in undated:
            update["$unset"] = {NEWEST_KNOWN: ""}
        else:
            update |= {"$max": {"newest": newest[bucket]}, "$setOnInsert": {NEWEST_KNOWN: True}}
        try:
            key = {"user_id": user_id, "bucket": bucket}
            await db[TERM_COUNTS].update_one(key, update, upsert=True, session=session)
        except (DocumentTooLarge, WriteError) as exc:
            if isinstance(exc, WriteError) and exc.code not in TOO_LARGE:
                raise
            raise BucketFull(bucket) from exc
    if deltas:
        await db[TERM_COUNT_DELTAS].delete_many({"_id": {"$in": [d["_id"] for d in deltas]}}, session=session)


async def forget_count_deltas(db: AsyncDatabase[Document], user_id: ObjectId, bucket: int) -> None:
    """A full bucket's deltas dropped: its `newest` no longer bounds its terms' entries."""
    await db[TERM_COUNT_DELTAS].delete_many({"user_id": user_id, "bucket": bucket})
    await db[TERM_COUNTS].update_one({"user_id": user_id, "bucket": bucket}, {"$unset": {NEWEST_KNOWN: ""}})


async def forget_user_counts(db: AsyncDatabase[Document], user_id: ObjectId) -> None:
    """A deleted user's term counts and deltas: the words they wrote are not kept."""
    for collection in (TERM_COUNTS, TERM_COUNT_DELTAS):
        await db[collection].delete_many({"user_id": user_id})


class BucketFull(Exception):
    """A bucket of counts that cannot grow: it stops counting (the counts only choose which
    term drives a search), its deltas are dropped."""

    def __init__(self, bucket: int) -> None:
        super().__init__(bucket)
        self.bucket = bucket


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
