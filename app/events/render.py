"""What a change means to a client: the event name and the REST response model as its data."""

from __future__ import annotations

import logging

from bson import ObjectId
from fastapi.sse import ServerSentEvent
from pydantic import ValidationError

from app.chat.schemas import MessageOut, SessionOut
from app.core.changes import Change
from app.core.db import MESSAGES, SESSIONS

SESSION_CREATED = "session.created"
SESSION_UPDATED = "session.updated"
SESSION_DELETED = "session.deleted"
MESSAGE_CREATED = "message.created"
MESSAGE_UPDATED = "message.updated"  # a reply the server writes, as it grows and when it ends
log = logging.getLogger(__name__)
RESET = ServerSentEvent(event="reset", data={"detail": "Events were missed: reload over REST, then reconnect"})


def user_event(change: Change) -> ServerSentEvent | None:
    """The event for the user stream, with the change's id; None for what clients do not see
    (and for a document that does not fit its response model: logged, never a broken stream)."""
    try:
        return _user_event(change)
    except ValidationError:
        log.warning("a changed document does not fit its response model", extra={"collection": change.collection})
        return None


def _user_event(change: Change) -> ServerSentEvent | None:
    if change.collection == MESSAGES and change.operation == "insert":
        return ServerSentEvent(event=MESSAGE_CREATED, id=change.token, raw_data=_message_json(change))
    if change.collection == MESSAGES:
        return ServerSentEvent(event=MESSAGE_UPDATED, id=change.token, raw_data=_message_json(change))
    if change.collection == SESSIONS:
        session = SessionOut.model_validate(change.document).model_dump_json()
        return ServerSentEvent(event=_session_event_name(change), id=change.token, raw_data=session)
    return None


def session_message(change: Change, session_id: ObjectId) -> tuple[int, ServerSentEvent] | None:
    """For one session's stream: a new message of that session as (seq, event), id = seq."""
    if change.collection != MESSAGES or change.operation != "insert" or change.document.get("session_id") != session_id:
        return None
    try:
        message = MessageOut.model_validate(change.document)
    except ValidationError:
        log.warning("a changed document does not fit its response model", extra={"collection": change.collection})
        return None
    return message.seq, message_event(message)


def session_message_update(change: Change, session_id: ObjectId) -> ServerSentEvent | None:
    """For one session's stream: a message of that session rewritten (a reply growing). No id:
    the stream's ids are the seqs of created messages, and a reconnect gets the reply's
    current text anyway (see events.router)."""
    if change.collection != MESSAGES or change.operation == "insert" or change.document.get("session_id") != session_id:
        return None
    try:
        message = MessageOut.model_validate(change.document)
    except ValidationError:
        log.warning("a changed document does not fit its response model", extra={"collection": change.collection})
        return None
    return message_update_event(message)


def message_update_event(message: MessageOut) -> ServerSentEvent:
    return ServerSentEvent(event=MESSAGE_UPDATED, raw_data=message.model_dump_json())


def message_event(message: MessageOut) -> ServerSentEvent:
    return ServerSentEvent(event=MESSAGE_CREATED, id=str(message.seq), raw_data=message.model_dump_json())


def session_deleted(change: Change, session_id: ObjectId) -> bool:
    return (
        change.collection == SESSIONS
        and change.document.get("_id") == session_id
        and change.document.get("deleted_at") is not None
    )


def session_message_count(change: Change, session_id: ObjectId) -> int | None:
    """The session's message_count when the change is an update of that session."""
    if change.collection != SESSIONS or change.document.get("_id") != session_id:
        return None
    count = change.document.get("message_count")
    return count if isinstance(count, int) else None


def _session_event_name(change: Change) -> str:
    if change.document.get("deleted_at") is not None:
        return SESSION_DELETED  # marked just before its delete (chat.service.delete_session)
    return SESSION_CREATED if change.operation == "insert" else SESSION_UPDATED


def _message_json(change: Change) -> str:
    return MessageOut.model_validate(change.document).model_dump_json()
