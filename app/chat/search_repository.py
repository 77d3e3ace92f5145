"""The reads search makes: one stored term within a bounded time range, newest first, from
the indexes user_terms_recent of search_message_terms and of
user_terms_recent (session_titles); the other terms only at the candidates' exact times; the
messages of a page by `_id`; the per-user term counts that pick the rarest term.

SecantusDB reads every index entry such a filter matches, so callers keep the range narrow; a
range on the terms and one on the time together would be a collection scan, which is why a
query word's prefix is stored as a term of its own (app.chat.terms). Points of the index (a
term at a list of exact times) are cheap whatever the term: ~5 ms for 50 of a term held by
every one of 20,000 messages, against ~35 ms to read its range over 1,000 of them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from app.chat.search_index import NEWEST_KNOWN, term_bucket
from app.core.db import (
    MESSAGE_TERMS,
    MESSAGES,
    SESSION_TITLES,
    SESSIONS,
    TERM_COUNT_DELTAS,
    TERM_COUNTS,
    Document,
    time_range,
)


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
        bounds = time_range(self.since, self.until)
        return {field: bounds} if bounds else {}


POSTING_FIELDS = {"session_id": 1, "created_at": 1}
POINTS_PER_READ = 50


@dataclass(frozen=True)
class TermCounts:
    """How many of the user's messages hold each term (as the indexer counted them: the
    buckets' counts and the deltas not merged into them yet; a term never counted is absent),
    and per bucket of terms, a time no entry of its terms is newer than, where known."""

    counts: dict[str, int]
    newest: dict[int, datetime]

    def newest_holding(self, term: str) -> datetime | None:
        return self.newest.get(term_bucket(term))


async def term_counts(db: AsyncDatabase[Document], user_id: ObjectId, terms: list[str]) -> TermCounts:
    buckets = list({term_bucket(term) for term in terms})
    counts: Counter[str] = Counter()
    newest: dict[int, datetime] = {}
    undated: set[int] = set()  # a document of the bucket that does not bound it (NEWEST_KNOWN)
    for collection in (TERM_COUNTS, TERM_COUNT_DELTAS):
        async for document in db[collection].find({"user_id": user_id, "bucket": {"$in": buckets}}):
            stored = document.get("counts", {})
            counts.update({term: int(stored[term]) for term in terms if term in stored})
            bucket = document["bucket"]
            if "newest" in document and (collection == TERM_COUNT_DELTAS or document.get(NEWEST_KNOWN) is True):
                newest[bucket] = max(newest.get(bucket, document["newest"]), document["newest"])
            else:
                undated.add(bucket)
    return TermCounts(dict(counts), {bucket: at for bucket, at in newest.items() if bucket not in undated})


async def postings_in(
    db: AsyncDatabase[Document], user_id: ObjectId, term: str, window: TimeSlice, limit: int
) -> list[Document]:
    """The index entries (_id, session_id, created_at; not the terms) of the user's messages
    holding `term` in the window, newest first, at most `limit`."""
    query = {"user_id": user_id, "terms": term, **window.filter("created_at")}
    cursor = db[MESSAGE_TERMS].find(query, POSTING_FIELDS).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
    return await cursor.limit(limit).to_list(limit)


async def postings_at(
    db: AsyncDatabase[Document], user_id: ObjectId, term: str, times: list[datetime]
) -> set[ObjectId]:
    """The ids of the user's messages created at one of `times` holding `term`: one point of
    the index per time, however common the term (a few times per command: SecantusDB's cost
    of an $in grows faster than its length, ~5 ms for 50 points, ~2.5 s for 1,000)."""
    found: set[ObjectId] = set()
    for start in range(0, len(times), POINTS_PER_READ):
        query = {"user_id": user_id, "terms": term, "created_at": {"$in": times[start : start + POINTS_PER_READ]}}
        found.update([document["_id"] async for document in db[MESSAGE_TERMS].find(query, {"_id": 1})])
    return found


async def words_starting(db: AsyncDatabase[Document], user_id: ObjectId, prefix: str, limit: int) -> list[str]:
    """Words of the user's messages starting with `prefix` (as counted by the indexer, so
    perhaps some no longer held), at most `limit`. Reads every bucket of counts and the deltas
    not merged into them yet: a bounded number of documents."""
    words: dict[str, None] = {}
    for collection in (TERM_COUNTS, TERM_COUNT_DELTAS):
        async for document in db[collection].find({"user_id": user_id}):
            words.update((term, None) for term in document.get("counts", {}) if term.startswith(prefix))
            if len(words) >= limit:
                return list(words)[:limit]
    return list(words)


async def messages_by_id(db: AsyncDatabase[Document], message_ids: list[ObjectId]) -> dict[ObjectId, Document]:
    """The stored messages of a page (ones deleted since they were indexed are missing)."""
    if not message_ids:
        return {}
    cursor = db[MESSAGES].find({"_id": {"$in": message_ids}})
    return {document["_id"]: document async for document in cursor}


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
