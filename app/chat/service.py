"""Chat sessions and their messages: the rules, the transaction, and the page logic."""

from __future__ import annotations

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from app.chat import repository
from app.chat.paging import message_page_range
from app.chat.schemas import MessageCreate, MessageOut, Page, SessionOut
from app.core.cursors import CursorCodec
from app.core.db import Database, Document
from app.core.errors import BadRequest, NotFound
from app.core.transactions import run_in_transaction
from app.core.types import parse_object_id, utc_now

SESSION_NOT_FOUND = "Chat session not found"


def _messages_cursor_kind(session_id: ObjectId) -> str:
    return f"messages:{session_id}"


async def create_session(database: Database, user_id: ObjectId, title: str) -> SessionOut:
    session_id = await repository.insert_session(database.db, user_id, title, utc_now())
    await repository.adjust_session_count(database.db, user_id, +1)
    return SessionOut.model_validate(await _owned_or_404(database, session_id, user_id))


async def find_owned_session(database: Database, raw_session_id: str, user_id: ObjectId) -> Document:
    """The session document when it exists and is the user's; NotFound otherwise, the same
    for a malformed id, a missing session and someone else's."""
    return await _owned_or_404(database, _session_id(raw_session_id), user_id)


async def _owned_or_404(database: Database, session_id: ObjectId, user_id: ObjectId) -> Document:
    document = await repository.find_owned_session(database.db, session_id, user_id)
    if document is None:
        raise NotFound(SESSION_NOT_FOUND)
    return document


def _session_id(raw: str) -> ObjectId:
    try:
        return parse_object_id(raw)
    except ValueError as exc:
        raise NotFound(SESSION_NOT_FOUND) from exc


async def rename_session(database: Database, raw_session_id: str, user_id: ObjectId, title: str) -> SessionOut:
    session_id = _session_id(raw_session_id)
    await _owned_or_404(database, session_id, user_id)
    if not await repository.rename_session(database.db, session_id, title, utc_now()):
        raise NotFound(SESSION_NOT_FOUND)
    return SessionOut.model_validate(await _owned_or_404(database, session_id, user_id))


async def delete_session(database: Database, raw_session_id: str, user_id: ObjectId) -> None:
    """Delete the session, then its messages. Once the session is gone no message can be added
    to it (posting reads the session in its transaction), and its messages are unreachable
    even if the second step is interrupted."""
    session_id = _session_id(raw_session_id)
    await _owned_or_404(database, session_id, user_id)
    if not await repository.delete_session(database.db, session_id):
        raise NotFound(SESSION_NOT_FOUND)
    await repository.adjust_session_count(database.db, user_id, -1)
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

    message_id = await run_in_transaction(database, insert, serialize_on=session_id)
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
