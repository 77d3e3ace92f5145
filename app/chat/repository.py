"""The chat_sessions and messages collections; every query is served by an index from
core.db.INDEXES.

A session is looked up by `_id` alone and its owner checked here, never in callers: a filter of
`_id` plus another field is planned as a collection scan by SecantusDB (explain() shows it,
and findAndModify really runs it: ~450 ms with 20,000 sessions, against ~1 ms by `_id`).
Writes then go by `_id`: a session's user_id never changes, so the check cannot go stale.
"""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import MESSAGES, SESSIONS, USERS, Document

RECENT_ACTIVITY_ORDER = [("updated_at", DESCENDING), ("_id", DESCENDING)]


async def insert_session(db: AsyncDatabase[Document], user_id: ObjectId, title: str, now: datetime) -> ObjectId:
    document = {
        "user_id": user_id,
        "title": title,
        "message_count": 0,
        "last_message_at": None,
        "created_at": now,
        "updated_at": now,
    }
    result = await db[SESSIONS].insert_one(document)
    session_id: ObjectId = result.inserted_id
    return session_id


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


async def sessions_active_in(
    db: AsyncDatabase[Document],
    user_id: ObjectId,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    until_inclusive: bool = False,
) -> list[Document]:
    """The user's sessions last active from `since` (inclusive) to `until`, most recent first;
    None leaves that side open.

    The embedded server reads every index entry a filter matches even under a limit, so
    callers keep the range narrow (see chat.paging).
    """
    query: Document = {"user_id": user_id}
    bounds = (("$gte", since), ("$lte" if until_inclusive else "$lt", until))
    window = {op: bound for op, bound in bounds if bound is not None}
    if window:
        query["updated_at"] = window
    cursor = db[SESSIONS].find(query).sort(RECENT_ACTIVITY_ORDER)
    if limit is not None:
        cursor = cursor.limit(limit)
    return await cursor.to_list(limit)


async def sessions_tied_before(
    db: AsyncDatabase[Document], user_id: ObjectId, updated_at: datetime, session_id: ObjectId, limit: int
) -> list[Document]:
    """Sessions last active at exactly `updated_at` that sort after `session_id`."""
    cursor = db[SESSIONS].find({"user_id": user_id, "updated_at": updated_at, "_id": {"$lt": session_id}})
    return await cursor.sort(RECENT_ACTIVITY_ORDER).limit(limit).to_list(limit)


async def rename_session(db: AsyncDatabase[Document], session_id: ObjectId, title: str, now: datetime) -> bool:
    result = await db[SESSIONS].update_one({"_id": session_id}, {"$set": {"title": title, "updated_at": now}})
    return result.matched_count == 1


async def delete_session(db: AsyncDatabase[Document], session_id: ObjectId) -> bool:
    result = await db[SESSIONS].delete_one({"_id": session_id})
    return result.deleted_count == 1


async def delete_session_messages(db: AsyncDatabase[Document], session_id: ObjectId) -> int:
    result = await db[MESSAGES].delete_many({"session_id": session_id})
    return result.deleted_count


async def claim_next_seq(
    db: AsyncDatabase[Document],
    session_id: ObjectId,
    user_id: ObjectId,
    now: datetime,
    session: AsyncClientSession | None,
) -> int | None:
    """Count the message and record the activity on the user's session; the new
    message_count is the message's seq. None when the session is missing or not the user's.

    In a transaction: read, then update by `_id` (a concurrent writer's update conflicts and is
    retried, so the count read is the one we increment). Without one (a standalone MongoDB):
    findAndModify by `_id`, the atomic way to take the next number there.
    """
    current = await find_owned_session(db, session_id, user_id, session)
    if current is None:
        return None
    change = {"$inc": {"message_count": 1}, "$set": {"last_message_at": now, "updated_at": now}}
    if session is None:
        document = await db[SESSIONS].find_one_and_update(
            {"_id": session_id}, change, projection={"message_count": 1}, return_document=ReturnDocument.AFTER
        )
        return None if document is None else int(document["message_count"])
    await db[SESSIONS].update_one({"_id": session_id}, change, session=session)
    return int(current["message_count"]) + 1


async def insert_message(
    db: AsyncDatabase[Document], document: Document, session: AsyncClientSession | None
) -> ObjectId:
    result = await db[MESSAGES].insert_one(document, session=session)
    message_id: ObjectId = result.inserted_id
    return message_id


async def find_message(db: AsyncDatabase[Document], message_id: ObjectId) -> Document | None:
    return await db[MESSAGES].find_one({"_id": message_id})


async def messages_in_seq_range(
    db: AsyncDatabase[Document], session_id: ObjectId, first: int, last: int
) -> list[Document]:
    """Messages with first <= seq <= last, oldest first: a bounded index range, so its cost
    depends on the page size, not on the session's length."""
    cursor = db[MESSAGES].find({"session_id": session_id, "seq": {"$gte": first, "$lte": last}})
    return await cursor.sort("seq", ASCENDING).to_list(last - first + 1)


MESSAGE_DELETE_BATCH = 500


async def user_session_ids(db: AsyncDatabase[Document], user_id: ObjectId) -> list[ObjectId]:
    return [document["_id"] async for document in db[SESSIONS].find({"user_id": user_id}, {"_id": 1})]


async def delete_user_sessions(db: AsyncDatabase[Document], user_id: ObjectId) -> int:
    result = await db[SESSIONS].delete_many({"user_id": user_id})
    return result.deleted_count


async def delete_messages_of_sessions(db: AsyncDatabase[Document], session_ids: list[ObjectId]) -> int:
    """Delete the messages of these sessions, a batch of sessions per command."""
    deleted = 0
    for start in range(0, len(session_ids), MESSAGE_DELETE_BATCH):
        batch = session_ids[start : start + MESSAGE_DELETE_BATCH]
        deleted += (await db[MESSAGES].delete_many({"session_id": {"$in": batch}})).deleted_count
    return deleted


async def count_sessions(db: AsyncDatabase[Document]) -> int:
    return await db[SESSIONS].estimated_document_count()


async def count_messages(db: AsyncDatabase[Document]) -> int:
    return await db[MESSAGES].estimated_document_count()


async def count_sessions_active_since(db: AsyncDatabase[Document], since: datetime) -> int:
    return await db[SESSIONS].count_documents({"updated_at": {"$gte": since}})
