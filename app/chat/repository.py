"""The chat_sessions and messages collections, and the records search and imports find them
by (session_titles, session_sources, message_sources); every query is served by an index from
core.db.INDEXES.

A session is looked up by `_id` alone and its owner checked here, never in callers: a filter of
`_id` plus another field is planned as a collection scan by SecantusDB (explain() shows it,
and findAndModify really runs it: ~450 ms with 20,000 sessions, against ~1 ms by `_id`).
Writes then go by `_id`: a session's user_id never changes, so the check cannot go stale.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from bson import ObjectId
from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from app.chat.terms import text_terms
from app.core.db import (
    MESSAGE_SOURCES,
    MESSAGES,
    SESSION_DELETIONS,
    SESSION_SOURCES,
    SESSION_TITLES,
    SESSIONS,
    USERS,
    Document,
    time_range,
)

RECENT_ACTIVITY_ORDER = [("updated_at", DESCENDING), ("_id", DESCENDING)]


async def insert_session(
    db: AsyncDatabase[Document],
    user_id: ObjectId,
    fields: Document,
    now: datetime,
    session: AsyncClientSession | None = None,
    updated_at: datetime | None = None,
) -> ObjectId:
    """Insert a session with `fields` (title, platform, metadata and, when given, name), and
    its title's search terms (in `session`'s transaction, when given), created `now` (and last
    active at `updated_at`, by default then too: an import keeps the conversation's times).
    DuplicateKeyError when the user already has a session of that name."""
    document = {
        "user_id": user_id,
        **fields,
        "message_count": 0,
        "last_message_at": None,
        "created_at": now,
        "updated_at": updated_at or now,
    }
    result = await db[SESSIONS].insert_one(document, session=session)
    session_id: ObjectId = result.inserted_id
    title = {"user_id": user_id, "session_id": session_id, "terms": text_terms(fields["title"]), "created_at": now}
    await db[SESSION_TITLES].insert_one(title, session=session)
    return session_id


async def find_named_session(
    db: AsyncDatabase[Document], user_id: ObjectId, name: str, session: AsyncClientSession | None = None
) -> Document | None:
    return await db[SESSIONS].find_one({"user_id": user_id, "name": name}, session=session)


async def adjust_session_count(db: AsyncDatabase[Document], user_id: ObjectId, delta: int) -> None:
    """Keep the user's approximate session count (on the user document), which list_sessions
    uses to choose how to read. Not transactional: an interrupted create or delete leaves it
    off by one, which only affects that choice."""
    await db[USERS].update_one({"_id": user_id}, {"$inc": {"session_count": delta}})


async def session_count(db: AsyncDatabase[Document], user_id: ObjectId) -> int | None:
    """The count kept by adjust_session_count; None when unknown (sessions loaded directly)."""
    document = await db[USERS].find_one({"_id": user_id}, {"session_count": 1, "_id": 0})
    count = None if document is None else document.get("session_count")
    return None if count is None else int(count)


async def find_owned_session(
    db: AsyncDatabase[Document],
    session_id: ObjectId,
    user_id: ObjectId,
    session: AsyncClientSession | None = None,
) -> Document | None:
    """The session when it exists and belongs to the user; None otherwise, alike."""
    document = await db[SESSIONS].find_one({"_id": session_id}, session=session)
    if document is None or document["user_id"] != user_id:
        return None
    return document


def _owner_filter(user_id: ObjectId, platform: str | None) -> Document:
    return {"user_id": user_id} if platform is None else {"user_id": user_id, "platform": platform}


async def sessions_active_in(
    db: AsyncDatabase[Document],
    user_id: ObjectId,
    platform: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    until_inclusive: bool = False,
) -> list[Document]:
    """The user's sessions (of `platform`, when given) last active from `since` (inclusive) to
    `until`, most recent first; None leaves that side open.

    The embedded server reads every index entry a filter matches even under a limit, so
    callers keep the range narrow (see chat.paging).
    """
    query = _owner_filter(user_id, platform)
    window = time_range(since, until, until_inclusive)
    if window:
        query["updated_at"] = window
    cursor = db[SESSIONS].find(query).sort(RECENT_ACTIVITY_ORDER)
    if limit is not None:
        cursor = cursor.limit(limit)
    return await cursor.to_list(limit)


async def sessions_tied_before(
    db: AsyncDatabase[Document],
    user_id: ObjectId,
    platform: str | None,
    updated_at: datetime,
    session_id: ObjectId,
    limit: int,
) -> list[Document]:
    """Sessions last active at exactly `updated_at` that sort after `session_id`."""
    query = _owner_filter(user_id, platform) | {"updated_at": updated_at, "_id": {"$lt": session_id}}
    cursor = db[SESSIONS].find(query)
    return await cursor.sort(RECENT_ACTIVITY_ORDER).limit(limit).to_list(limit)


async def update_session(
    db: AsyncDatabase[Document],
    session_id: ObjectId,
    changes: Document,
    removals: list[str],
    now: datetime,
    session: AsyncClientSession | None,
) -> bool:
    """Set `changes` and remove the `removals` fields (a new title's search terms too).
    DuplicateKeyError for a taken name."""
    update: Document = {"$set": {**changes, "updated_at": now}}
    if removals:
        update["$unset"] = dict.fromkeys(removals, "")
    result = await db[SESSIONS].update_one({"_id": session_id}, update, session=session)
    if result.matched_count == 1 and "title" in changes:
        terms = {"$set": {"terms": text_terms(changes["title"])}}
        await db[SESSION_TITLES].update_one({"session_id": session_id}, terms, session=session)
    return result.matched_count == 1


async def delete_session(
    db: AsyncDatabase[Document],
    session_id: ObjectId,
    deletion: Document | None,
    session: AsyncClientSession | None = None,
) -> bool:
    """Delete the session and record its `deletion` (in `session`'s transaction, when given;
    None: a session no one has seen yet, an import's undone create), then its title and source
    records (left behind by an interrupted delete on a server without transactions, they find
    nothing: search and imports read the session they name)."""
    result = await db[SESSIONS].delete_one({"_id": session_id}, session=session)
    if result.deleted_count != 1:
        return False
    if deletion is not None:
        await db[SESSION_DELETIONS].insert_one(deletion, session=session)
    for collection in (SESSION_TITLES, SESSION_SOURCES):
        await db[collection].delete_many({"session_id": session_id}, session=session)
    return True


async def delete_session_messages(
    db: AsyncDatabase[Document], session_id: ObjectId, session: AsyncClientSession | None = None
) -> int:
    """Delete the session's messages and their source records (so an import adds them again)."""
    result = await db[MESSAGES].delete_many({"session_id": session_id}, session=session)
    await db[MESSAGE_SOURCES].delete_many({"session_id": session_id}, session=session)
    return result.deleted_count


async def reset_session_counters(
    db: AsyncDatabase[Document], session_id: ObjectId, now: datetime, session: AsyncClientSession | None
) -> None:
    """No messages any more: the next one is seq 1."""
    change = {"$set": {"message_count": 0, "last_message_at": None, "updated_at": now}}
    await db[SESSIONS].update_one({"_id": session_id}, change, session=session)


async def claim_seqs(
    db: AsyncDatabase[Document],
    session_id: ObjectId,
    user_id: ObjectId,
    count: int,
    now: datetime,
    session: AsyncClientSession | None,
    dated: datetime | None = None,
    current: Document | None = None,
) -> int | None:
    """Count `count` new messages and record the activity on the user's session; returns the
    first of their seqs (the next `count` numbers are theirs). None when the session is
    missing or not the user's. `dated`: messages of that time (an import), which move the
    session's last activity forward to `dated` and `now`, never back. `current`: the session
    as this transaction read it already (it is not read again).

    In a transaction: read, then update by `_id` (a concurrent writer's update conflicts and is
    retried, so the count read is the one we increment). Without one (a standalone MongoDB):
    findAndModify by `_id`, the atomic way to take numbers there.
    """
    if current is None:
        current = await find_owned_session(db, session_id, user_id, session)
    if current is None:
        return None
    change: Document = {"$inc": {"message_count": count}}
    if dated is None:
        change["$set"] = {"last_message_at": now, "updated_at": now}
    else:
        change["$max"] = {"last_message_at": dated, "updated_at": max(now, dated)}
    if session is None:
        document = await db[SESSIONS].find_one_and_update(
            {"_id": session_id}, change, projection={"message_count": 1}, return_document=ReturnDocument.AFTER
        )
        return None if document is None else int(document["message_count"]) - count + 1
    await db[SESSIONS].update_one({"_id": session_id}, change, session=session)
    return int(current["message_count"]) + 1


async def insert_messages(
    db: AsyncDatabase[Document], documents: list[Document], session: AsyncClientSession | None
) -> list[Document]:
    """Insert in one command, in order (ordered inserts stop at the first failure); returns the
    documents as stored, with the `_id` the driver gave each. They need no reading back: what
    a message holds keeps its value in BSON exactly (metadata's rules, times in whole
    milliseconds: utc_now)."""
    await db[MESSAGES].insert_many(documents, ordered=True, session=session)
    return documents


async def messages_in_seq_range(
    db: AsyncDatabase[Document],
    session_id: ObjectId,
    first: int,
    last: int,
    session: AsyncClientSession | None = None,
    whole_batch: bool = False,
) -> list[Document]:
    """Messages with first <= seq <= last, oldest first: a bounded index range, so its cost
    depends on the page size, not on the session's length. `whole_batch` (for up to a page
    of 1,000) asks for the range in one reply: SecantusDB finds every result for the first
    batch anyway, and a getMore for the rest cost ~1.5 ms a page.

    Sorted here rather than by the database: the range holds at most one message per seq, the
    index already yields them in order (so the sort is one linear pass), and SecantusDB's sort
    stage over the range cost ~20% of a 1,000-message read."""
    seqs = {"$gte": first, "$lte": last}
    cursor = db[MESSAGES].find({"session_id": session_id, "seq": seqs}, session=session)
    if whole_batch:
        cursor = cursor.batch_size(max(1, last - first + 1))
    documents = await cursor.to_list(last - first + 1)
    documents.sort(key=_by_seq)
    return documents


async def message_page(db: AsyncDatabase[Document], session_id: ObjectId, first: int, last: int) -> list[Document]:
    """`messages_in_seq_range` for a page the API encodes itself (app.chat.message_json), with
    naive UTC times: bson attaches a Python tzinfo to each tz-aware datetime, which cost more
    than the rest of decoding a 1,000-message page."""
    naive_times = db.with_options(codec_options=db.codec_options.with_options(tz_aware=False))
    return await messages_in_seq_range(naive_times, session_id, first, last, whole_batch=True)


async def find_message(
    db: AsyncDatabase[Document], message_id: ObjectId, session: AsyncClientSession | None = None
) -> Document | None:
    """By `_id` alone (see the module's note on `{_id, other}` filters): callers check the session."""
    return await db[MESSAGES].find_one({"_id": message_id}, session=session)


async def delete_message(db: AsyncDatabase[Document], message_id: ObjectId, session: AsyncClientSession | None) -> None:
    await db[MESSAGES].delete_one({"_id": message_id}, session=session)


def _by_seq(document: Document) -> int:
    seq: int = document["seq"]
    return seq


MESSAGE_DELETE_BATCH = 500


async def user_session_ids(db: AsyncDatabase[Document], user_id: ObjectId) -> list[ObjectId]:
    return [document["_id"] async for document in db[SESSIONS].find({"user_id": user_id}, {"_id": 1})]


async def delete_user_sessions(db: AsyncDatabase[Document], user_id: ObjectId) -> int:
    result = await db[SESSIONS].delete_many({"user_id": user_id})
    for collection in (SESSION_TITLES, SESSION_SOURCES):
        await db[collection].delete_many({"user_id": user_id})
    return result.deleted_count


async def delete_messages_of_sessions(db: AsyncDatabase[Document], session_ids: list[ObjectId]) -> int:
    """Delete the messages of these sessions, a batch of sessions per command."""
    deleted = 0
    for start in range(0, len(session_ids), MESSAGE_DELETE_BATCH):
        batch = session_ids[start : start + MESSAGE_DELETE_BATCH]
        deleted += (await db[MESSAGES].delete_many({"session_id": {"$in": batch}})).deleted_count
        await db[MESSAGE_SOURCES].delete_many({"session_id": {"$in": batch}})
    return deleted


async def count_sessions(db: AsyncDatabase[Document]) -> int:
    return await db[SESSIONS].estimated_document_count()


async def count_messages(db: AsyncDatabase[Document]) -> int:
    return await db[MESSAGES].estimated_document_count()


async def count_sessions_active_since(db: AsyncDatabase[Document], since: datetime) -> int:
    return await db[SESSIONS].count_documents({"updated_at": {"$gte": since}})


async def user_sessions_by_activity(
    db: AsyncDatabase[Document], user_id: ObjectId, batch_size: int
) -> AsyncIterator[Document]:
    """All the user's sessions, most recently active first, read in batches (an export)."""
    cursor = db[SESSIONS].find({"user_id": user_id}).sort(RECENT_ACTIVITY_ORDER).batch_size(batch_size)
    async for document in cursor:
        yield document


async def user_totals(db: AsyncDatabase[Document], user_id: ObjectId) -> tuple[int, int]:
    """(sessions, messages) of the user, summed by the server from the sessions' counters."""
    pipeline: list[Document] = [
        {"$match": {"user_id": user_id}},
        {"$group": {"_id": None, "sessions": {"$sum": 1}, "messages": {"$sum": "$message_count"}}},
    ]
    async for row in await db[SESSIONS].aggregate(pipeline):
        return int(row["sessions"]), int(row["messages"])
    return 0, 0


async def find_session_source(db: AsyncDatabase[Document], user_id: ObjectId, source_id: str) -> Document | None:
    """The record naming the user's session imported from `source_id`."""
    return await db[SESSION_SOURCES].find_one({"user_id": user_id, "source_id": source_id})


async def insert_session_source(
    db: AsyncDatabase[Document],
    user_id: ObjectId,
    source_id: str,
    session_id: ObjectId,
    session: AsyncClientSession | None,
) -> None:
    """DuplicateKeyError when the user has a session of that source already."""
    record = {"user_id": user_id, "source_id": source_id, "session_id": session_id}
    await db[SESSION_SOURCES].insert_one(record, session=session)


async def delete_session_source(db: AsyncDatabase[Document], record_id: ObjectId) -> None:
    await db[SESSION_SOURCES].delete_one({"_id": record_id})


async def message_source_ids(db: AsyncDatabase[Document], session_id: ObjectId, source_ids: list[str]) -> set[str]:
    """Which of `source_ids` the session's messages were imported from already."""
    cursor = db[MESSAGE_SOURCES].find({"session_id": session_id, "source_id": {"$in": source_ids}}, {"source_id": 1})
    return {document["source_id"] async for document in cursor}


async def insert_message_sources(
    db: AsyncDatabase[Document], session_id: ObjectId, source_ids: list[str], session: AsyncClientSession | None
) -> None:
    """DuplicateKeyError (a BulkWriteError) when one of them is recorded already."""
    records = [{"session_id": session_id, "source_id": source_id} for source_id in source_ids]
    await db[MESSAGE_SOURCES].insert_many(records, ordered=True, session=session)


async def set_message_fields(db: AsyncDatabase[Document], message_id: ObjectId, fields: Document) -> None:
    """A server-written reply's progress (by `_id` alone: see the module's note)."""
    await db[MESSAGES].update_one({"_id": message_id}, {"$set": fields})
