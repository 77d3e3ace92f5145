"""A user's whole history, read for an export and written by an import (app.transfer): the
chat domain's side of it, so transfer never touches the collections."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import NamedTuple

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError

from app.chat import repository
from app.chat.metadata import MAX_BYTES as METADATA_MAX_BYTES
from app.chat.schemas import CONTENT_MAX, MessageCreate, MessageOut, SessionCreate, SessionOut
from app.chat.service import append_dated_messages
from app.core.db import SESSIONS, Database, Document
from app.core.errors import DatabaseUnavailable
from app.core.transactions import run_in_transaction
from app.core.types import parse_object_id

SESSION_BATCH = 100
# Messages are read a page at a time, and a page is bounded in bytes whatever the messages
# hold (500 of the largest were 64 MB a page: five slow export readers took +392 MB).
PAGE_BYTES = 8 * 1024 * 1024
MESSAGE_MAX_BYTES = 4 * CONTENT_MAX + METADATA_MAX_BYTES + 1024  # UTF-8 content, metadata, the other fields
MESSAGE_PAGE = PAGE_BYTES // MESSAGE_MAX_BYTES
DUPLICATE_KEY = 11000
CREATE_ATTEMPTS = 3


async def totals(database: Database, user_id: ObjectId) -> tuple[int, int]:
    return await repository.user_totals(database.db, user_id)


async def sessions_by_activity(database: Database, user_id: ObjectId) -> AsyncIterator[SessionOut]:
    async for document in repository.user_sessions_by_activity(database.db, user_id, SESSION_BATCH):
        yield SessionOut.model_validate(document)


async def session_messages(database: Database, session: SessionOut) -> AsyncIterator[MessageOut]:
    """The session's messages in seq order, a bounded seq range at a time, up to the count it
    had when read (so a session written to meanwhile ends where its header said)."""
    for first in range(1, session.message_count + 1, MESSAGE_PAGE):
        last = min(first + MESSAGE_PAGE - 1, session.message_count)
        for document in await repository.messages_in_seq_range(database.db, session.id, first, last):
            yield MessageOut.model_validate(document)


class SessionDates(NamedTuple):
    created_at: datetime
    updated_at: datetime


class DatedMessage(NamedTuple):
    message: MessageCreate
    created_at: datetime
    source_id: str  # the id it had at its source


async def owns_session(database: Database, user_id: ObjectId, raw_session_id: str) -> bool:
    """Whether the user has a session of this id (an export of theirs restored: still there)."""
    try:
        session_id = parse_object_id(raw_session_id)
    except ValueError:
        return False
    return await repository.find_owned_session(database.db, session_id, user_id) is not None


async def session_for_source(
    database: Database, user_id: ObjectId, body: SessionCreate, source_id: str, dates: SessionDates
) -> tuple[SessionOut, bool]:
    """The user's session imported from `source_id`, created from `body` (with the
    conversation's `dates`) when there is none yet: (session, created). Race-free: the session
    and its source record are inserted in one transaction, and the unique index on (user_id,
    source id) lets one of two concurrent imports commit; the other reads the winner's. A name
    another session of the user has already is left out (the session is created without one)."""
    for _ in range(CREATE_ATTEMPTS):
        existing = await _session_of_source(database, user_id, source_id)
        if existing is not None:
            return SessionOut.model_validate(existing), False
        try:
            created = await _create_for_source(database, user_id, body, source_id, dates)
        except DuplicateKeyError:
            continue  # a concurrent import of this source (or of this name) committed first
        await repository.adjust_session_count(database.db, user_id, +1)
        database.announce(SESSIONS, "insert", [created], user_id)
        return SessionOut.model_validate(created), True
    raise DatabaseUnavailable("Too many concurrent imports of this conversation; try again shortly")


async def _session_of_source(database: Database, user_id: ObjectId, source_id: str) -> Document | None:
    """The session the source record names; a record whose session was deleted is dropped,
    so the conversation can be imported again."""
    record = await repository.find_session_source(database.db, user_id, source_id)
    if record is None:
        return None
    session = await repository.find_owned_session(database.db, record["session_id"], user_id)
    if session is None:
        await repository.delete_session_source(database.db, record["_id"])
    return session


async def _create_for_source(
    database: Database, user_id: ObjectId, body: SessionCreate, source_id: str, dates: SessionDates
) -> Document:
    async def create(session: AsyncClientSession | None) -> Document:
        fields: Document = {"title": body.effective_title, "platform": body.platform, "metadata": body.metadata}
        if body.name is not None:
            taken = await repository.find_named_session(database.db, user_id, body.name, session)
            if taken is None:
                fields["name"] = body.name
        session_id = await repository.insert_session(
            database.db, user_id, fields, dates.created_at, session, updated_at=dates.updated_at
        )
        try:
            await repository.insert_session_source(database.db, user_id, source_id, session_id, session)
        except DuplicateKeyError:
            if session is None:  # no transaction to roll back (a standalone server)
                await repository.delete_session(database.db, session_id, None)
            raise
        created = await repository.find_owned_session(database.db, session_id, user_id, session)
        assert created is not None
        return created

    return await run_in_transaction(database, create, serialize_on=("import-source", user_id, source_id), owner=user_id)


async def append_new_messages(
    database: Database, user_id: ObjectId, session_id: ObjectId, batch: list[DatedMessage], active_at: datetime
) -> int:
    """Append the messages of `batch` that the session does not hold yet (by their source ids),
    in one transaction; how many were added. A concurrent import of the same messages makes
    the insert fail on the unique index of their source records (nothing of the batch is
    stored: it is one transaction): the look-up then runs again."""
    ids = [item.source_id for item in batch]
    for attempt in range(2):
        present = await repository.message_source_ids(database.db, session_id, ids)
        fresh = [item for item in batch if item.source_id not in present]
        if not fresh:
            return 0
        messages = [(item.message, item.created_at) for item in fresh]
        try:
            await append_dated_messages(
                database, session_id, user_id, messages, [item.source_id for item in fresh], active_at
            )
        except (DuplicateKeyError, BulkWriteError) as exc:
            if attempt or not _duplicate(exc):
                raise
            continue
        return len(fresh)
    raise AssertionError("unreachable")


def _duplicate(exc: DuplicateKeyError | BulkWriteError) -> bool:
    """A duplicate key (insert_many reports it as a BulkWriteError with code 11000)."""
    if isinstance(exc, DuplicateKeyError):
        return True
    errors = exc.details.get("writeErrors", [])
    return bool(errors) and all(error.get("code") == DUPLICATE_KEY for error in errors)
