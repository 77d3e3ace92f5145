"""Chat sessions and their messages: the rules, the transaction, and the page logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from app.chat import repository
from app.chat.paging import INITIAL_WINDOW, ActivityPosition, activity_windows, message_page_range
from app.chat.schemas import MessageCreate, MessageOut, Page, SessionOut
from app.core.cursors import CursorCodec
from app.core.db import Database, Document
from app.core.errors import BadRequest, NotFound
from app.core.transactions import run_in_transaction
from app.core.types import parse_object_id, utc_now

SESSION_NOT_FOUND = "Chat session not found"
SESSIONS_CURSOR = "sessions"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _messages_cursor_kind(session_id: ObjectId) -> str:
    return f"messages:{session_id}"


async def create_session(database: Database, user_id: ObjectId, title: str) -> SessionOut:
    session_id = await repository.insert_session(database.db, user_id, title, utc_now())
    return await _read_session(database, session_id, user_id)


async def _read_session(database: Database, session_id: ObjectId, user_id: ObjectId) -> SessionOut:
    document = await repository.find_session(database.db, session_id, user_id)
    if document is None:
        raise NotFound(SESSION_NOT_FOUND)
    return SessionOut.model_validate(document)


async def find_owned_session(database: Database, raw_session_id: str, user_id: ObjectId) -> Document:
    """The session document when it exists and is the user's; NotFound otherwise, the same
    for a malformed id, a missing session and someone else's."""
    session_id = _session_id(raw_session_id)
    document = await repository.find_session(database.db, session_id, user_id)
    if document is None:
        raise NotFound(SESSION_NOT_FOUND)
    return document


def _session_id(raw: str) -> ObjectId:
    try:
        return parse_object_id(raw)
    except ValueError as exc:
        raise NotFound(SESSION_NOT_FOUND) from exc


async def rename_session(database: Database, raw_session_id: str, user_id: ObjectId, title: str) -> SessionOut:
    document = await repository.rename_session(database.db, _session_id(raw_session_id), user_id, title, utc_now())
    if document is None:
        raise NotFound(SESSION_NOT_FOUND)
    return SessionOut.model_validate(document)


async def delete_session(database: Database, raw_session_id: str, user_id: ObjectId) -> None:
    """Delete the session, then its messages. Once the session is gone no message can be added
    to it (posting checks the session in the same transaction), and its messages are
    unreachable even if the second step is interrupted."""
    session_id = _session_id(raw_session_id)
    if not await repository.delete_session(database.db, session_id, user_id):
        raise NotFound(SESSION_NOT_FOUND)
    await repository.delete_session_messages(database.db, session_id)


async def post_message(database: Database, raw_session_id: str, user_id: ObjectId, body: MessageCreate) -> MessageOut:
    """Insert a message and move its session's counters in one transaction: message_count,
    last_message_at and updated_at always agree with the stored messages."""
    session_id = _session_id(raw_session_id)

    async def insert(session: AsyncClientSession | None) -> ObjectId:
        now = utc_now()
        seq = await repository.claim_next_seq(database.db, session_id, user_id, now, session)
        if seq is None:
            raise NotFound(SESSION_NOT_FOUND)
        message = {
            "session_id": session_id,
            "user_id": user_id,
            "role": body.role,
            "content": body.content,
            "seq": seq,
            "created_at": now,
        }
        return await repository.insert_message(database.db, message, session)

    message_id = await run_in_transaction(database, insert)
    document = await repository.find_message(database.db, message_id)
    if document is None:  # deleted with its session between the commit and this read
        raise NotFound(SESSION_NOT_FOUND)
    return MessageOut.model_validate(document)


async def list_messages(
    database: Database, codec: CursorCodec, session: Document, limit: int, cursor: str | None
) -> Page[MessageOut]:
    """The newest page first; inside a page, oldest to newest. The cursor walks back by seq,
    so pages never skip or repeat a message while new ones arrive."""
    kind = _messages_cursor_kind(session["_id"])
    newest = int(session["message_count"])
    if cursor is not None:
        before = codec.decode(kind, cursor).get("before")
        if not isinstance(before, int) or not 1 <= before <= newest + 1:
            raise BadRequest("Invalid cursor")
        newest = before - 1
    page_range = message_page_range(newest, limit)
    if page_range is None:
        return Page(items=[], next_cursor=None)
    documents = await repository.messages_in_seq_range(database.db, session["_id"], page_range.first, page_range.last)
    next_cursor = codec.encode(kind, {"before": page_range.first}) if page_range.has_older else None
    return Page(items=[MessageOut.model_validate(d) for d in documents], next_cursor=next_cursor)


async def list_sessions(
    database: Database, codec: CursorCodec, user_id: ObjectId, limit: int, cursor: str | None
) -> Page[SessionOut]:
    """The user's sessions, most recently active first, read window by window (see paging)."""
    position = _decode_sessions_cursor(codec, cursor) if cursor else None
    found: list[Document] = []
    if position is not None:  # sessions tied with the last one's time, after it in _id order
        found = await repository.sessions_tied_before(
            database.db, user_id, position.updated_at, position.session_id, limit + 1
        )
    before = position.updated_at if position else utc_now() + timedelta(seconds=1)
    width = position.window if position else INITIAL_WINDOW
    for since, until in activity_windows(before, width):
        if len(found) > limit:
            break
        found += await repository.sessions_active_in(database.db, user_id, until, since, limit + 1 - len(found))
        if since is not None:
            width = until - since
    items = found[:limit]
    next_cursor = None
    if len(found) > limit:
        last = items[-1]
        next_cursor = codec.encode(
            SESSIONS_CURSOR,
            {
                "t": _millis(last["updated_at"]),
                "id": str(last["_id"]),
                "w": int(width.total_seconds() * 1000),
            },
        )
    return Page(items=[SessionOut.model_validate(d) for d in items], next_cursor=next_cursor)


def _millis(value: datetime) -> int:
    return (value - EPOCH) // timedelta(milliseconds=1)


def _decode_sessions_cursor(codec: CursorCodec, cursor: str) -> ActivityPosition:
    values = codec.decode(SESSIONS_CURSOR, cursor)
    try:
        return ActivityPosition(
            updated_at=EPOCH + timedelta(milliseconds=values["t"]),
            session_id=parse_object_id(values["id"]),
            window=timedelta(milliseconds=values["w"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise BadRequest("Invalid cursor") from exc
