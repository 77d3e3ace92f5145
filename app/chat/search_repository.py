"""The reads search makes: one stored term within a bounded time range, newest first, from
the indexes user_terms_recent / session_terms_recent (messages) and user_terms_recent
(session_titles). SecantusDB reads every index entry such a filter matches, so callers keep the
range narrow; a range on the terms and one on the time together would be a collection scan,
which is why a query word's prefix is stored as a term of its own (app.chat.terms)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from app.core.db import MESSAGES, SESSION_TITLES, SESSIONS, Document


@dataclass(frozen=True)
class TimeSlice:
    """Documents whose time is in [since, until) (None: open), or, with `tied_before`, whose
    time equals `until` and whose _id is below that id (the rest of a tie a page ended in)."""

    since: datetime | None
    until: datetime | None
    tied_before: ObjectId | None = None

    def filter(self, field: str) -> Document:
        if self.tied_before is not None:
            return {field: self.until, "_id": {"$lt": self.tied_before}}
        bounds = {op: value for op, value in (("$gte", self.since), ("$lt", self.until)) if value is not None}
        return {field: bounds} if bounds else {}


MESSAGE_FIELDS = {"session_id": 1, "user_id": 1, "role": 1, "content": 1, "seq": 1, "created_at": 1, "terms": 1}


async def messages_with_term(
    db: AsyncDatabase[Document],
    owner: Document,
    term: str,
    window: TimeSlice,
    limit: int,
) -> list[Document]:
    """Messages of `owner` ({"user_id": ...} or {"session_id": ...}) holding `term` in the
    window, newest first, at most `limit`."""
    query = {**owner, "terms": term, **window.filter("created_at")}
    cursor = db[MESSAGES].find(query, MESSAGE_FIELDS).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
    return await cursor.limit(limit).to_list(limit)


async def titles_with_term(
    db: AsyncDatabase[Document], user_id: ObjectId, term: str, window: TimeSlice, limit: int
) -> list[Document]:
    """Title records of the user's sessions holding `term`, by the session's creation time in
    the window, newest first, at most `limit`."""
    query = {"user_id": user_id, "terms": term, **window.filter("created_at")}
    cursor = db[SESSION_TITLES].find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
    return await cursor.limit(limit).to_list(limit)


async def sessions_by_id(db: AsyncDatabase[Document], session_ids: list[ObjectId]) -> dict[ObjectId, Document]:
    if not session_ids:
        return {}
    cursor = db[SESSIONS].find({"_id": {"$in": session_ids}}, {"user_id": 1, "title": 1, "platform": 1})
    return {document["_id"]: document async for document in cursor}
