"""Upgrades of stored chat documents, each run once per database and recorded in the
migrations collection (a unique name per step, so two servers starting at once run it at most
twice, harmlessly: every step is idempotent)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from bson import ObjectId
from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from app.chat.repository import RECENT_ACTIVITY_ORDER
from app.chat.schemas import DEFAULT_PLATFORM
from app.chat.search_index import NEWEST_KNOWN
from app.chat.terms import text_terms
from app.core.db import (
    MESSAGE_SOURCES,
    MESSAGES,
    MIGRATIONS,
    SESSION_SOURCES,
    SESSION_TITLES,
    SESSIONS,
    TERM_COUNT_DELTAS,
    TERM_COUNTS,
    Document,
)
from app.core.types import utc_now

log = logging.getLogger(__name__)
SESSIONS_PLATFORM = "chat_sessions.platform"
TERMS_OFF_MESSAGES = "search_terms_off_messages"
LOOKUP_RECORDS = "title_and_source_records"
PROVENANCE_OUT_OF_METADATA = "import_provenance_out_of_metadata"
DATED_TERM_COUNTS = "search_term_counts_newest"
# What an earlier build's imports put into metadata: their source ids had these prefixes.
IMPORT_PREFIXES = ("chatgpt:", "chat-export:")
BATCH = 500
# Indexes an earlier build kept on the sessions and messages themselves.
OBSOLETE_INDEXES = {
    SESSIONS: ("user_title_terms_recent", "user_source_id_unique", "user_source_id"),
    MESSAGES: ("session_source_id_unique", "session_source_id"),
}
# The search indexes an earlier build kept on the messages (now on search_message_terms).
MESSAGE_TERM_INDEXES = ("user_terms_recent", "session_terms_recent")
DUPLICATE_KEY = 11000
IMPORTED = {"metadata.source_id": {"$type": "string"}}
Write = UpdateOne | InsertOne[Document]


async def upgrade_chat_documents(db: AsyncDatabase[Document]) -> None:
    await _once(db, SESSIONS_PLATFORM, _default_platform)
    await _once(db, TERMS_OFF_MESSAGES, _drop_terms_from_messages)
    await _once(db, LOOKUP_RECORDS, _backfill_lookup_records)
    await _once(db, PROVENANCE_OUT_OF_METADATA, _provenance_out_of_metadata)
    await _once(db, DATED_TERM_COUNTS, _date_term_counts)


async def _once(
    db: AsyncDatabase[Document], name: str, step: Callable[[AsyncDatabase[Document]], Awaitable[None]]
) -> None:
    if await db[MIGRATIONS].find_one({"name": name}) is not None:
        return
    await step(db)
    with contextlib.suppress(DuplicateKeyError):
        await db[MIGRATIONS].insert_one({"name": name, "done_at": utc_now()})


async def _default_platform(db: AsyncDatabase[Document]) -> None:
    """Sessions stored before platforms existed get the default one, so filters find them."""
    result = await db[SESSIONS].update_many({"platform": {"$exists": False}}, {"$set": {"platform": DEFAULT_PLATFORM}})
    if result.modified_count:
        log.info("sessions upgraded", extra={"step": SESSIONS_PLATFORM, "sessions": result.modified_count})


async def _drop_terms_from_messages(db: AsyncDatabase[Document]) -> None:
    """An earlier build stored each message's search terms on it, indexed there: the terms go
    first, in batches with the progress logged, then the indexes (SecantusDB drops an index
    entry by entry, ~3 ms each: emptied first, it drops in a moment). Resumable (it looks for
    messages still holding terms) and harmless twice at once. The search index itself is
    built from the messages by app.chat.search_indexer."""

    async def updates() -> AsyncIterator[Write]:
        async for document in db[MESSAGES].find({"terms": {"$exists": True}}, {"_id": 1}):
            yield UpdateOne({"_id": document["_id"]}, {"$unset": {"terms": ""}})

    await _write_in_batches(db, MESSAGES, updates(), TERMS_OFF_MESSAGES)
    await _drop_indexes(db, MESSAGES, MESSAGE_TERM_INDEXES)


async def _drop_indexes(db: AsyncDatabase[Document], collection: str, names: tuple[str, ...]) -> None:
    existing = {index["name"] async for index in await db[collection].list_indexes()}
    for name in set(names) & existing:
        with contextlib.suppress(OperationFailure):  # dropped by another server just now
            await db[collection].drop_index(name)


async def _backfill_lookup_records(db: AsyncDatabase[Document]) -> None:
    """Sessions stored before title and source records existed get their title record (terms
    for search) and, when imported, their source record, and imported messages theirs; an
    earlier build's title terms and indexes on the sessions and messages themselves go.
    Records that exist already are kept (the inserts are unordered and their duplicate-key
    failures ignored), so this is safe next to a running server."""

    async def titles() -> AsyncIterator[Write]:
        async for session in db[SESSIONS].find({}, {"user_id": 1, "title": 1, "created_at": 1}):
            terms = text_terms(session.get("title") or "")
            owner = {"user_id": session["user_id"], "session_id": session["_id"]}
            yield InsertOne({**owner, "terms": terms, "created_at": session["created_at"]})

    async def session_sources() -> AsyncIterator[Write]:
        async for session in db[SESSIONS].find(IMPORTED, {"user_id": 1, "metadata.source_id": 1}):
            owner = {"user_id": session["user_id"], "session_id": session["_id"]}
            yield InsertOne({**owner, "source_id": session["metadata"]["source_id"]})

    async def message_sources() -> AsyncIterator[Write]:
        async for message in db[MESSAGES].find(IMPORTED, {"session_id": 1, "metadata.source_id": 1}):
            yield InsertOne({"session_id": message["session_id"], "source_id": message["metadata"]["source_id"]})

    await _write_in_batches(db, SESSION_TITLES, titles(), LOOKUP_RECORDS)
    await _write_in_batches(db, SESSION_SOURCES, session_sources(), LOOKUP_RECORDS)
    await _write_in_batches(db, MESSAGE_SOURCES, message_sources(), LOOKUP_RECORDS)
    await db[SESSIONS].update_many({"title_terms": {"$exists": True}}, {"$unset": {"title_terms": ""}})
    for collection, names in OBSOLETE_INDEXES.items():
        await _drop_indexes(db, collection, names)


async def _date_term_counts(db: AsyncDatabase[Document]) -> None:
    """Term counts kept before they told their newest entry's time (search_index.NEWEST_KNOWN)
    get their user's last session activity (a session's `updated_at` follows its newest
    message), their deltas too, so that search starts a first page there rather than at now. A
    bound that is too early costs a first page more reads, never a hit. Idempotent (`$max`)."""
    users = await db[TERM_COUNTS].distinct("user_id", {NEWEST_KNOWN: {"$exists": False}})
    for user_id in users:
        newest = await db[SESSIONS].find_one({"user_id": user_id}, sort=RECENT_ACTIVITY_ORDER)
        if newest is None:
            continue
        await db[TERM_COUNT_DELTAS].update_many(
            {"user_id": user_id, "newest": {"$exists": False}}, {"$set": {"newest": newest["updated_at"]}}
        )
        await db[TERM_COUNTS].update_many(
            {"user_id": user_id, NEWEST_KNOWN: {"$exists": False}},
            {"$max": {"newest": newest["updated_at"]}, "$set": {NEWEST_KNOWN: True}},
        )
    if users:
        log.info("search term counts dated", extra={"step": DATED_TERM_COUNTS, "users": len(users)})


async def _provenance_out_of_metadata(db: AsyncDatabase[Document]) -> None:
    """An earlier build's imports wrote their source ids into the metadata of what they created
    (`metadata.source_id` on sessions and messages, `metadata.source: "chatgpt"` on ChatGPT
    sessions); the source records hold them now. A key goes only where it is exactly what such
    an import wrote: on a session, the source id of its record, with an import's prefix; on a
    message of such a session, the source id of one of the session's message records. A user's
    own `source_id` anywhere else is left as it is."""
    removals: list[tuple[ObjectId, Document]] = []
    async for session in db[SESSIONS].find(IMPORTED, {"metadata.source_id": 1, "metadata.source": 1, "platform": 1}):
        record = await db[SESSION_SOURCES].find_one({"session_id": session["_id"]})
        source_id = session["metadata"]["source_id"]
        if record is None or record["source_id"] != source_id or not source_id.startswith(IMPORT_PREFIXES):
            continue
        removed: Document = {"metadata.source_id": ""}
        if session.get("platform") == "chatgpt" and session["metadata"].get("source") == "chatgpt":
            removed["metadata.source"] = ""
        removals.append((session["_id"], removed))

    async def messages() -> AsyncIterator[Write]:
        for session_id, _ in removals:
            recorded = {r["source_id"] async for r in db[MESSAGE_SOURCES].find({"session_id": session_id})}
            async for message in db[MESSAGES].find({"session_id": session_id, **IMPORTED}, {"metadata.source_id": 1}):
                if message["metadata"]["source_id"] in recorded:
                    yield UpdateOne({"_id": message["_id"]}, {"$unset": {"metadata.source_id": ""}})

    async def sessions() -> AsyncIterator[Write]:
        for session_id, removed in removals:
            yield UpdateOne({"_id": session_id}, {"$unset": removed})

    await _write_in_batches(db, MESSAGES, messages(), PROVENANCE_OUT_OF_METADATA)
    await _write_in_batches(db, SESSIONS, sessions(), PROVENANCE_OUT_OF_METADATA)


async def _write_in_batches(
    db: AsyncDatabase[Document], collection: str, requests: AsyncIterator[Write], step: str
) -> None:
    """Send `requests` in unordered batches of BATCH, logging the progress after each."""
    batch: list[Write] = []
    done = 0
    async for request in requests:
        batch.append(request)
        if len(batch) >= BATCH:
            done += await _write(db, collection, batch)
            batch = []
            log.info("upgrading", extra={"step": step, "collection": collection, "documents": done})
    done += await _write(db, collection, batch)
    if done:
        log.info("upgraded", extra={"step": step, "collection": collection, "documents": done})


async def _write(db: AsyncDatabase[Document], collection: str, requests: list[Write]) -> int:
    """Write in one unordered batch: how many documents it changed or added; documents already
    there (a duplicate key) are left as they are."""
    if not requests:
        return 0
    try:
        result = await db[collection].bulk_write(requests, ordered=False)
    except BulkWriteError as exc:
        if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
            raise
        return int(exc.details.get("nInserted", 0))
    return result.modified_count + result.inserted_count
