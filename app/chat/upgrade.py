"""Upgrades of stored chat documents, each run once per database and recorded in the
migrations collection (a unique name per step, so two servers starting at once run it at most
twice, harmlessly: every step is idempotent)."""

from __future__ import annotations

import contextlib
import logging

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from app.chat.schemas import DEFAULT_PLATFORM
from app.core.db import MIGRATIONS, SESSIONS, Document
from app.core.types import utc_now

log = logging.getLogger(__name__)
SESSIONS_PLATFORM = "chat_sessions.platform"


async def upgrade_chat_documents(db: AsyncDatabase[Document]) -> None:
    """Sessions stored before platforms existed get the default one, so filters find them."""
    if await db[MIGRATIONS].find_one({"name": SESSIONS_PLATFORM}) is not None:
        return
    result = await db[SESSIONS].update_many({"platform": {"$exists": False}}, {"$set": {"platform": DEFAULT_PLATFORM}})
    if result.modified_count:
        log.info("sessions upgraded", extra={"step": SESSIONS_PLATFORM, "sessions": result.modified_count})
    with contextlib.suppress(DuplicateKeyError):
        await db[MIGRATIONS].insert_one({"name": SESSIONS_PLATFORM, "done_at": utc_now()})
