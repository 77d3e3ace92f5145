"""The chat_sessions and messages collections. Every filter includes the owner, so another
user's session is never touched; every query is served by an index from core.db.INDEXES."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import MESSAGES, SESSIONS, Document

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


async def find_session(db: AsyncDatabase[Document], session_id: ObjectId, user_id: ObjectId) -> Document | None:
    return await db[SESSIONS].find_one({"_id": session_id, "user_id": user_id})


async def sessions_active_in(
    db: AsyncDatabase[Document],
    user_id: ObjectId,
    before: datetime,
    since: datetime | None,
    limit: int,
) -> list[Document]:
    """The user's sessions last active in [since, before), most recent first.

    The embedded server reads every index entry a filter matches even under a limit, so
    callers keep the range narrow (see service.list_sessions).
    """
    window: dict[str, datetime] = {"$lt": before}
    if since is not None:
        window["$gte"] = since
    cursor = db[SESSIONS].find({"user_id": user_id, "updated_at": window})
    return await cursor.sort(RECENT_ACTIVITY_ORDER).limit(limit).to_list(limit)


async def sessions_tied_before(
    db: AsyncDatabase[Document],
    user_id: ObjectId,
    updated_at: datetime,
    session_id: ObjectId,
    limit: int,
) -> list[Document]:
    """Sessions last active at exactly `updated_at` that sort after `session_id`."""
    cursor = db[SESSIONS].find({"user_id": user_id, "updated_at": updated_at, "_id": {"$lt": session_id}})
    return await cursor.sort(RECENT_ACTIVITY_ORDER).limit(limit).to_list(limit)


async def rename_session(
    db: AsyncDatabase[Document], session_id: ObjectId, user_id: ObjectId, title: str, now: datetime
) -> Document | None:
    return await db[SESSIONS].find_one_and_update(
        {"_id": session_id, "user_id": user_id},
        {"$set": {"title": title, "updated_at": now}},
        return_document=ReturnDocument.AFTER,
    )


async def delete_session(db: AsyncDatabase[Document], session_id: ObjectId, user_id: ObjectId) -> bool:
    result = await db[SESSIONS].delete_one({"_id": session_id, "user_id": user_id})
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
    """Check ownership, count the message and record the activity in one command; the new
    message_count is the message's seq. None when the session is missing or not the user's."""
    document = await db[SESSIONS].find_one_and_update(
        {"_id": session_id, "user_id": user_id},
        {"$inc": {"message_count": 1}, "$set": {"last_message_at": now, "updated_at": now}},
        projection={"message_count": 1, "_id": 0},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return None if document is None else int(document["message_count"])


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
