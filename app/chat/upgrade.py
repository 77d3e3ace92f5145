"""Upgrades of stored chat documents, each run once per database and recorded in the
migrations collection (a unique name per step, so two servers starting at once run it at most
twice, harmlessly: every step is idempotent)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from app.chat.schemas import DEFAULT_PLATFORM
from app.chat.terms import text_terms
from app.core.db import MESSAGES, MIGRATIONS, SESSION_SOURCES, SESSION_TITLES, SESSIONS, Document
from app.core.types import utc_now

log = logging.getLogger(__name__)
SESSIONS_PLATFORM = "chat_sessions.platform"
SEARCH_TERMS = "search_terms"
SESSION_RECORDS = "session_titles_and_sources"
BATCH = 500
# Indexes an earlier build kept on chat_sessions (now on session_titles and session_sources).
OBSOLETE_SESSION_INDEXES = ("user_title_terms_recent", "user_source_id_unique", "user_source_id")
DUPLICATE_KEY = 11000
Write = UpdateOne | InsertOne[Document]


async def upgrade_chat_documents(db: AsyncDatabase[Document]) -> None:
    await _once(db, SESSIONS_PLATFORM, _default_platform)
    await _once(db, SEARCH_TERMS, _backfill_search_terms)
    await _once(db, SESSION_RECORDS, _backfill_session_records)


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


async def _backfill_search_terms(db: AsyncDatabase[Document]) -> None:
    """Messages stored before search existed get their terms (new ones are written with them):
    one pass, updates in batches, progress logged."""
    updates: list[Write] = []
    done = 0
    async for document in db[MESSAGES].find({"terms": {"$exists": False}}, {"content": 1}):
        updates.append(
            UpdateOne({"_id": document["_id"]}, {"$set": {"terms": text_terms(document.get("content") or "")}})
        )
        if len(updates) >= BATCH:
            done += await _write(db, MESSAGES, updates)
            updates = []
            log.info("adding search terms", extra={"step": SEARCH_TERMS, "messages": done})
    done += await _write(db, MESSAGES, updates)
    if done:
        log.info("search terms added", extra={"step": SEARCH_TERMS, "messages": done})


async def _backfill_session_records(db: AsyncDatabase[Document]) -> None:
    """Sessions stored before title and source records existed get their title record (terms
    for search) and, when imported, their source record; an earlier build's title terms and indexes on the
    sessions themselves go. Records that exist already are kept (the inserts are unordered and
    their duplicate-key failures ignored), so this is safe next to a running server."""
    fields = {"user_id": 1, "title": 1, "created_at": 1, "metadata.source_id": 1}
    titles: list[Write] = []
    sources: list[Write] = []
    done = 0
    async for session in db[SESSIONS].find({}, fields):
        owner = {"user_id": session["user_id"], "session_id": session["_id"]}
        terms = text_terms(session.get("title") or "")
        titles.append(InsertOne({**owner, "terms": terms, "created_at": session["created_at"]}))
        source_id = (session.get("metadata") or {}).get("source_id")
        if isinstance(source_id, str):
            sources.append(InsertOne({**owner, "source_id": source_id}))
        if len(titles) >= BATCH:
            done += await _write(db, SESSION_TITLES, titles) + await _write(db, SESSION_SOURCES, sources)
            titles, sources = [], []
            log.info("adding session records", extra={"step": SESSION_RECORDS, "records": done})
    done += await _write(db, SESSION_TITLES, titles) + await _write(db, SESSION_SOURCES, sources)
    await db[SESSIONS].update_many({"title_terms": {"$exists": True}}, {"$unset": {"title_terms": ""}})
    existing = {index["name"] async for index in await db[SESSIONS].list_indexes()}
    for name in OBSOLETE_SESSION_INDEXES:
        if name in existing:
            await db[SESSIONS].drop_index(name)
    if done:
        log.info("session records added", extra={"step": SESSION_RECORDS, "records": done})


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
