"""Replies the server writes into a session (app.assistant generates them): the chat side.

Chat knows a reply as an assistant message with a `status`, stored from its first token and
rewritten as it grows. Who generates it is not chat's business: the `PendingReply` given to
`append_with_reply` decides the reply's metadata and records its generation in the same
transaction, and a `Replier` (set on app.state by the app) answers posts that ask for one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bson import ObjectId
from fastapi import Request, Response
from pymongo.asynchronous.client_session import AsyncClientSession

from app.auth.principal import AuthenticatedUser
from app.chat import repository
from app.chat.schemas import MessageCreate, MessageOut, MessageWithReply, ReplyStatus, ReplyTarget
from app.chat.service import SESSION_NOT_FOUND, _owned_or_404, _session_id, announce_messages, message_document
from app.core.db import MESSAGES, Database, Document
from app.core.errors import AppError, NotFound
from app.core.idempotency import IdempotentRequest, StoredResponse, run_once
from app.core.types import utc_now

STREAMING: ReplyStatus = "streaming"
# How long asking for a reply may wait for its turn to write (run_in_transaction): a burst of
# asks queues (a reply takes seconds anyway) rather than failing after DB_TIMEOUT_SECONDS.
ASK_WAIT_SECONDS = 20.0


class PendingReply(Protocol):
    async def prepare(
        self, session_document: Document, reply_id: ObjectId, transaction: AsyncClientSession | None
    ) -> Document:
        """Record the generation of the reply to be stored as `reply_id`, in the transaction,
        and answer the reply's metadata; may refuse (an AppError), which rolls everything back."""

    def stored(self, reply: MessageOut) -> None:
        """The reply as it is stored (committed with the transaction)."""


@dataclass(frozen=True)
class Appending:
    """The messages stored before a reply, with a door's `originals` (see message_document)."""

    messages: Sequence[MessageCreate]
    originals: Sequence[Document | None] | None = None


# The messages to store before the reply, told once the reply's generation is recorded (and its
# upstream call sent): from the session as the transaction reads it, in the transaction.
AppendingFor = Callable[[Document, AsyncClientSession | None], Awaitable[Appending]]


def appending(messages: Sequence[MessageCreate]) -> AppendingFor:
    async def given(_session: Document, _transaction: AsyncClientSession | None) -> Appending:
        return Appending(messages)

    return given


class Replier(Protocol):
    async def post_with_reply(
        self,
        request: Request,
        user: AuthenticatedUser,
        raw_session_id: str,
        message: MessageCreate,
        target: ReplyTarget,
        idempotency: IdempotentRequest | None,
    ) -> Response: ...


class RepliesUnavailable(AppError):
    status_code = 503
    detail = "no model is configured: set MODEL_BASE_URL"


def replier(request: Request) -> Replier:
    found: Replier | None = getattr(request.app.state, "replier", None)
    if found is None:
        raise RepliesUnavailable()
    return found


async def append_with_reply(
    database: Database,
    raw_session_id: str,
    user_id: ObjectId,
    message: MessageCreate | None,
    pending: PendingReply,
    idempotency: IdempotentRequest | None,
) -> StoredResponse:
    """In one transaction (with the Idempotency-Key's record): the message, when given, and an
    empty assistant message with status `streaming` after it. 201 with `{message, reply}`, or
    without a message 202 with the reply alone."""

    def respond(stored: list[MessageOut]) -> StoredResponse:
        if message is None:
            return StoredResponse(202, stored[-1].model_dump_json())
        return StoredResponse(201, MessageWithReply(message=stored[0], reply=stored[-1]).model_dump_json())

    messages = [message] if message is not None else []
    return await append_many_with_reply(
        database, raw_session_id, user_id, appending(messages), len(messages), pending, idempotency, respond
    )


async def append_many_with_reply(
    database: Database,
    raw_session_id: str,
    user_id: ObjectId,
    new: AppendingFor,
    most: int,
    pending: PendingReply,
    idempotency: IdempotentRequest | None,
    respond: Callable[[list[MessageOut]], StoredResponse],
    owned: Document | None = None,
) -> StoredResponse:
    """append_with_reply for any number of messages (at most `most`, told by `new` once the
    reply's generation is recorded), answered by `respond` from the stored messages, the reply
    last. `owned`: the session as the caller found it, the user's (a door that looked it up by
    name): the reply's generation is recorded before the transaction reads the session again,
    so the reply's call goes out one read sooner."""
    session_id = _session_id(raw_session_id)

    async def insert(session: AsyncClientSession | None) -> StoredResponse:
        # Made here, in order, so that the reply's id (its generation record's, before the insert)
        # still follows the messages' as their seqs do.
        ids = [ObjectId() for _ in range(most + 1)]
        if owned is None:  # the owner checked first: no generation recorded on another's session
            session_document = await _owned_or_404(database, session_id, user_id, session)
            metadata = await pending.prepare(session_document, ids[-1], session)
        else:
            metadata = await pending.prepare(owned, ids[-1], session)
            session_document = await _owned_or_404(database, session_id, user_id, session)
        told = await new(session_document, session)
        messages, originals = told.messages, told.originals
        if len(messages) > most:
            raise ValueError(f"{len(messages)} messages to store before a reply, at most {most} were announced")
        now = utc_now()
        first = await repository.claim_seqs(
            database.db, session_id, user_id, len(messages) + 1, now, session, current=session_document
        )
        if first is None:
            raise NotFound(SESSION_NOT_FOUND)
        documents = [
            {
                "_id": ids[i],
                **message_document(session_id, user_id, m, first + i, now, originals[i] if originals else None),
            }
            for i, m in enumerate(messages)
        ]
        reply = MessageCreate(role="assistant", content="", metadata=metadata)
        reply_document = message_document(session_id, user_id, reply, first + len(messages), now)
        documents.append({"_id": ids[-1], **reply_document, "status": STREAMING})
        stored = [
            MessageOut.model_validate(d) for d in await repository.insert_messages(database.db, documents, session)
        ]
        pending.stored(stored[-1])
        if database.publish_local is not None:
            await announce_messages(database, session_id, user_id, stored)
        return respond(stored)

    return await run_once(database, user_id, idempotency, insert, (user_id, session_id), wait=ASK_WAIT_SECONDS)


async def find_message(database: Database, message_id: ObjectId) -> MessageOut | None:
    document = await repository.find_message(database.db, message_id)
    return None if document is None else MessageOut.model_validate(document)


async def write_reply(
    database: Database, message_id: ObjectId, content: str, status: ReplyStatus, metadata: Document | None = None
) -> None:
    """Store the reply's text so far (and its status; `metadata`'s keys are set inside the
    reply's metadata, which the server wrote): one update by `_id`."""
    fields: Document = {"content": content, "status": status}  # searchable once final (search_indexer)
    for key, value in (metadata or {}).items():
        fields[f"metadata.{key}"] = value
    await repository.set_message_fields(database.db, message_id, fields)
    if database.publish_local is not None:
        document = await repository.find_message(database.db, message_id)
        if document is not None:
            database.announce(MESSAGES, "update", [document], document["user_id"])
