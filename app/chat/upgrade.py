"""Upgrades of stored chat documents, each run once per database and recorded in the
migrations collection (a unique name per step, so two servers starting at once run it at most
twice, harmlessly: every step is idempotent)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from app.chat.schemas import DEFAULT_PLATFORM
from app.chat.terms import text_terms
from app.core.db import MESSAGES, MIGRATIONS, SESSIONS, Document
from app.core.types import utc_now

log = logging.getLogger(__name__)
SESSIONS_PLATFORM = "chat_sessions.platform"
SEARCH_TERMS = "search_terms"
BATCH = 500


async def upgrade_chat_documents(db: AsyncDatabase[Document]) -> None:
    await _once(db, SESSIONS_PLATFORM, _default_platform)
    await _once(db, SEARCH_TERMS, _backfill_search_terms)


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
    """Messages and session titles stored before search existed get their terms (new ones are
    written with them): one pass over each collection, updates in batches, progress logged."""
    for collection, source, target in ((MESSAGES, "content", "terms"), (SESSIONS, "title", "title_terms")):
        updates: list[UpdateOne] = []
        done = 0
        async for document in db[collection].find({target: {"$exists": False}}, {source: 1}):
            updates.append(
                UpdateOne({"_id": document["_id"]}, {"$set": {target: text_terms(document.get(source) or "")}})
            )
            if len(updates) >= BATCH:
                done += await _write(db, collection, updates)
                updates = []
                progress = {"step": SEARCH_TERMS, "collection": collection, "documents": done}
                log.info("adding search terms", extra=progress)
        done += await _write(db, collection, updates)
        if done:
            log.info("search terms added", extra={"step": SEARCH_TERMS, "collection": collection, "documents": done})


async def _write(db: AsyncDatabase[Document], collection: str, updates: list[UpdateOne]) -> int:
    if not updates:
        return 0
    return (await db[collection].bulk_write(updates, ordered=False)).modified_count
