"""Chat sessions and their messages: the rules, the transactions, and the page logic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime, timedelta

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from app.chat import repository
from app.chat.message_json import MessagesPage
from app.chat.metadata import MetadataError, merge_patch, validate_metadata
from app.chat.paging import MAX_SEQ, SeqRange, message_page_range
from app.chat.schemas import MessageCreate, MessageList, MessageOut, SessionCreate, SessionOut, SessionUpdate
from app.core.cursors import CursorCodec
from app.core.db import MESSAGES, SESSION_DELETIONS, SESSIONS, Database, Document
from app.core.errors import BadRequest, Conflict, NotFound, UnprocessableContent
from app.core.idempotency import IdempotentRequest, StoredResponse, Work, run_once
from app.core.transactions import run_in_transaction
from app.core.types import parse_object_id, utc_now

SESSION_NOT_FOUND = "Chat session not found"
MESSAGE_NOT_FOUND = "Message not found"
NAME_TAKEN = "You already have a session with this name"
# How long a deletion's record stays (a TTL index removes it): change streams read it at once,
# and one resuming later reads the record from the oplog's entry, not from the collection.
DELETION_RECORD_KEPT = timedelta(hours=1)


class NameTaken(Conflict):
    detail = NAME_TAKEN


# A door that answers in its own shape renders what was stored: the session, or the messages.
RenderSession = Callable[[Document], str]
RenderMessages = Callable[[list[Document]], str]


def _session_json(document: Document) -> str:
    return SessionOut.model_validate(document).model_dump_json()


def _messages_cursor_kind(session_id: ObjectId) -> str:
    return f"messages:{session_id}"


def _session_lock(user_id: ObjectId, session_id: ObjectId) -> tuple[ObjectId, ObjectId]:
    """Writes to a session take turns per (caller, session): a stranger's requests for my
    session id never queue in front of mine (they fail their ownership check in their own turn)."""
    return (user_id, session_id)


async def create_session(
    database: Database,
    user_id: ObjectId,
    body: SessionCreate,
    idempotency: IdempotentRequest | None,
    messages: Sequence[MessageCreate] = (),
    originals: Sequence[Document | None] | None = None,
    render: RenderSession = _session_json,
) -> StoredResponse:
    """A new session (201), or with a `name` the user already has, that session unchanged (200).
    A new session gets `messages` (with their `originals`, see message_document) in the same
    transaction; a session found by name gets none.

    Race-free without a find-then-insert: the unique index on (user_id, name) lets one insert
    win; a loser reads the winner's session. The look-up first spares the usual case, a program
    finding its session again, a failing insert."""
    title = body.effective_title
    fields: Document = {"title": title, "platform": body.platform, "metadata": body.metadata}
    if body.name is not None:
        fields["name"] = body.name
    if body.agent is not None:
        fields["agent"] = body.agent

    async def get_or_create(session: AsyncClientSession | None) -> StoredResponse:
        if body.name is not None:
            existing = await repository.find_named_session(database.db, user_id, body.name, session)
            if existing is not None:
                return StoredResponse(200, render(existing))
        try:
            session_id = await repository.insert_session(database.db, user_id, fields, utc_now(), session)
        except DuplicateKeyError as exc:
            raise NameTaken() from exc
        stored = await _insert_messages(database, session_id, user_id, messages, originals, session) if messages else []
        created = await repository.find_owned_session(database.db, session_id, user_id, session)
        assert created is not None
        database.announce(SESSIONS, "insert", [created], user_id)
        if stored and database.publish_local is not None:
            database.announce(
                MESSAGES, "insert", [MessageOut.model_validate(d).model_dump(by_alias=True) for d in stored], user_id
            )
        return StoredResponse(201, render(created))

    if body.name is not None and idempotency is None:  # the usual case: no transaction to find it
        existing = await repository.find_named_session(database.db, user_id, body.name)
        if existing is not None:
            return StoredResponse(200, render(existing))
    lock = ("create-session", user_id, idempotency.key if idempotency else None)
    response = await run_once_naming(database, user_id, idempotency, get_or_create, lock)
    if response.status_code == 201 and not response.replayed:
        await repository.adjust_session_count(database.db, user_id, +1)
    return response


async def run_once_naming(
    database: Database, user_id: ObjectId, idempotency: IdempotentRequest | None, work: Work, lock: Hashable
) -> StoredResponse:
    """run_once for work that looks a session up by name and creates it when missing: when a
    concurrent create of that name wins (NameTaken), once more, and the look-up finds it."""
    for attempt in range(2):
        try:
            return await run_once(database, user_id, idempotency, work, lock)
        except NameTaken:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def named_session(database: Database, user_id: ObjectId, name: str) -> Document | None:
    return await repository.find_named_session(database.db, user_id, name)


async def find_owned_session(database: Database, raw_session_id: str, user_id: ObjectId) -> Document:
    """The session document when it exists and is the user's; NotFound otherwise, the same
    for a malformed id, a missing session and someone else's."""
    return await _owned_or_404(database, _session_id(raw_session_id), user_id)


async def _owned_or_404(
    database: Database, session_id: ObjectId, user_id: ObjectId, session: AsyncClientSession | None = None
) -> Document:
    document = await repository.find_owned_session(database.db, session_id, user_id, session)
    if document is None:
        raise NotFound(SESSION_NOT_FOUND)
    return document


def _session_id(raw: str) -> ObjectId:
    try:
        return parse_object_id(raw)
    except ValueError as exc:
        raise NotFound(SESSION_NOT_FOUND) from exc


async def update_session(
    database: Database, raw_session_id: str, user_id: ObjectId, body: SessionUpdate, replace_metadata: bool = False
) -> SessionOut:
    """Change the title, the name (409 if taken; null removes it) and the metadata (a JSON
    Merge Patch, or with `replace_metadata` the new metadata whole), in a transaction:
    concurrent patches of one session merge, none is lost."""
    session_id = _session_id(raw_session_id)
    given = body.model_fields_set

    async def apply(session: AsyncClientSession | None) -> Document:
        current = await _owned_or_404(database, session_id, user_id, session)
        changes: Document = {}
        removals: list[str] = []
        if "title" in given and body.title is not None:
            changes["title"] = body.title
        if "name" in given:
            if body.name is None:
                removals.append("name")
            else:
                changes["name"] = body.name
        if "agent" in given:
            if body.agent is None:
                removals.append("agent")
            else:
                changes["agent"] = body.agent
        if "metadata" in given:
            base = {} if replace_metadata else current.get("metadata") or {}
            changes["metadata"] = _patched_metadata(base, body.metadata)
        try:
            updated = await repository.update_session(database.db, session_id, changes, removals, utc_now(), session)
        except DuplicateKeyError as exc:
            raise Conflict(NAME_TAKEN) from exc
        if not updated:
            raise NotFound(SESSION_NOT_FOUND)
        return await _owned_or_404(database, session_id, user_id, session)

    document = await run_in_transaction(database, apply, serialize_on=_session_lock(user_id, session_id), owner=user_id)
    database.announce(SESSIONS, "update", [document], user_id)
    return SessionOut.model_validate(document)


def _patched_metadata(current: Document, patch: Document | None) -> Document:
    if patch is None:  # "metadata": null removes it all
        return {}
    merged: Document = merge_patch(current, patch)
    try:
        return validate_metadata(merged)
    except MetadataError as exc:
        raise UnprocessableContent(str(exc), loc=("body", "metadata")) from exc


async def delete_session(database: Database, raw_session_id: str, user_id: ObjectId) -> None:
    """Delete the session, then its messages. Once the session is gone no message can be added
    to it (posting reads the session in its transaction), and its messages are unreachable
    even if the second step is interrupted.

    The delete records the deletion (the session as it was, and its owner) in its transaction:
    a change stream's delete event carries only the `_id`, and the record's insert event
    carries everything event streams need, however late it is read."""
    session_id = _session_id(raw_session_id)

    async def delete(session: AsyncClientSession | None) -> Document:
        current = await _owned_or_404(database, session_id, user_id, session)
        now = utc_now()
        deletion: Document = {
            "user_id": user_id,
            "session_id": session_id,
            "session": current,
            "deleted_at": now,
            "expires_at": now + DELETION_RECORD_KEPT,
        }
        if not await repository.delete_session(database.db, session_id, deletion, session):
            raise NotFound(SESSION_NOT_FOUND)
        return deletion

    deletion = await run_in_transaction(
        database, delete, serialize_on=_session_lock(user_id, session_id), owner=user_id
    )
    database.announce(SESSION_DELETIONS, "insert", [deletion], user_id)
    await repository.adjust_session_count(database.db, user_id, -1)
    await repository.delete_session_messages(database.db, session_id)


async def clear_messages(database: Database, raw_session_id: str, user_id: ObjectId) -> None:
    """Delete the session's messages and reset its counters in one transaction: the session
    stays, and its next message is seq 1. Idempotent: clearing an empty session changes nothing
    but `updated_at`. Takes its turn with the session's posts, so none lands half-way."""
    session_id = _session_id(raw_session_id)
    current = await _owned_or_404(database, session_id, user_id)

    async def clear(session: AsyncClientSession | None) -> Document:
        await _owned_or_404(database, session_id, user_id, session)
        await repository.delete_session_messages(database.db, session_id, session)
        await repository.reset_session_counters(database.db, session_id, utc_now(), session)
        return await _owned_or_404(database, session_id, user_id, session)

    budget = _clear_budget(database, int(current["message_count"]))
    document = await run_in_transaction(
        database, clear, serialize_on=_session_lock(user_id, session_id), owner=user_id, timeout=budget
    )
    database.announce(SESSIONS, "update", [document], user_id)


# Deleting a message in a transaction took ~0.15 ms on the embedded database (3,000 in 434 ms):
# the usual bound (DB_TIMEOUT_SECONDS) plus twice that per message, up to CLEAR_MAX_SECONDS.
CLEAR_SECONDS_PER_MESSAGE = 0.0003
CLEAR_MAX_SECONDS = 120.0


def _clear_budget(database: Database, message_count: int) -> float:
    base = database.client.options.timeout or 0.0
    return min(CLEAR_MAX_SECONDS, base + message_count * CLEAR_SECONDS_PER_MESSAGE)


async def append_messages(
    database: Database,
    raw_session_id: str,
    user_id: ObjectId,
    messages: list[MessageCreate],
    idempotency: IdempotentRequest | None,
    as_list: bool,
) -> StoredResponse:
    """Store the messages with consecutive seqs and move the session's counters, all in one
    transaction (with the Idempotency-Key's record, when one is sent), then answer with the
    stored messages: one message, or `{"items": [...]}`."""

    def render(stored: list[Document]) -> str:
        out = [MessageOut.model_validate(d) for d in stored]
        return MessageList(items=out).model_dump_json() if as_list else out[0].model_dump_json()

    return await append_rendered(database, raw_session_id, user_id, messages, None, idempotency, render)


async def append_rendered(
    database: Database,
    raw_session_id: str,
    user_id: ObjectId,
    messages: Sequence[MessageCreate],
    originals: Sequence[Document | None] | None,
    idempotency: IdempotentRequest | None,
    render: RenderMessages,
) -> StoredResponse:
    """append_messages for a door that answers in its own shape: `render` turns the stored
    documents into the (stored, replayable) response body.

    One command per step whatever the count: read the session, update its counters, insert
    the messages, commit."""
    session_id = _session_id(raw_session_id)

    async def insert(session: AsyncClientSession | None) -> StoredResponse:
        stored = await _insert_messages(database, session_id, user_id, messages, originals, session)
        if database.publish_local is not None:  # no transaction here: this body runs once
            await announce_messages(database, session_id, user_id, [MessageOut.model_validate(d) for d in stored])
        return StoredResponse(201, render(stored))

    return await run_once(database, user_id, idempotency, insert, _session_lock(user_id, session_id))


async def store_messages(
    database: Database,
    session_id: ObjectId,
    user_id: ObjectId,
    messages: Sequence[MessageCreate],
    session: AsyncClientSession | None,
) -> list[MessageOut]:
    """Count the messages on the user's session and insert them with their seqs (in
    `session`'s transaction); NotFound when the session is not the user's."""
    stored = await _insert_messages(database, session_id, user_id, messages, None, session)
    return [MessageOut.model_validate(d) for d in stored]


async def _insert_messages(
    database: Database,
    session_id: ObjectId,
    user_id: ObjectId,
    messages: Sequence[MessageCreate],
    originals: Sequence[Document | None] | None,
    session: AsyncClientSession | None,
) -> list[Document]:
    now = utc_now()
    first = await repository.claim_seqs(database.db, session_id, user_id, len(messages), now, session)
    if first is None:
        raise NotFound(SESSION_NOT_FOUND)
    documents = [
        message_document(session_id, user_id, message, first + offset, now, originals[offset] if originals else None)
        for offset, message in enumerate(messages)
    ]
    return await repository.insert_messages(database.db, documents, session)


def message_document(
    session_id: ObjectId,
    user_id: ObjectId,
    message: MessageCreate,
    seq: int,
    created_at: datetime,
    original: Document | None = None,
) -> Document:
    """A message as stored: what the user wrote, its seq and time. Search indexes it behind
    the write (app.chat.search_indexer), so a message costs the same few index writes whatever
    its text. `original` is the message as a door received it when its shape holds more than
    role, content and metadata (an OpenAI item): kept in a field of its own, so that door gives
    it back exactly as written and the metadata stays the writer's."""
    document: Document = {
        "session_id": session_id,
        "user_id": user_id,
        "role": message.role,
        "content": message.content,
        "metadata": message.metadata,
        "seq": seq,
        "created_at": created_at,
    }
    if original is not None:
        document["original"] = original
    return document


async def append_dated_messages(
    database: Database,
    session_id: ObjectId,
    user_id: ObjectId,
    messages: list[tuple[MessageCreate, datetime]],
    source_ids: list[str],
    active_at: datetime,
) -> list[MessageOut]:
    """Append messages that keep their own creation times (an import), in one transaction with
    the session's counters and the records of the ids they had at their source; the session's
    last activity moves forward to `active_at` (the conversation's) and the messages' times.
    NotFound when the session is gone or not the user's; a DuplicateKeyError or BulkWriteError
    (nothing stored) when one of them is there already."""
    last = max(created_at for _, created_at in messages)

    async def insert(session: AsyncClientSession | None) -> list[MessageOut]:
        # The source records first: a duplicate then fails before anything else is written,
        # which matters on a standalone server, where there is no transaction to roll back.
        await repository.insert_message_sources(database.db, session_id, source_ids, session)
        first = await repository.claim_seqs(database.db, session_id, user_id, len(messages), active_at, session, last)
        if first is None:
            raise NotFound(SESSION_NOT_FOUND)
        documents = [
            message_document(session_id, user_id, message, first + offset, created_at)
            for offset, (message, created_at) in enumerate(messages)
        ]
        await repository.insert_messages(database.db, documents, session)
        last_seq = first + len(messages) - 1
        stored = await repository.messages_in_seq_range(database.db, session_id, first, last_seq, session)
        return [MessageOut.model_validate(d) for d in stored]

    stored = await run_in_transaction(database, insert, serialize_on=_session_lock(user_id, session_id), owner=user_id)
    if database.publish_local is not None:
        await announce_messages(database, session_id, user_id, stored)
    return stored


async def announce_messages(
    database: Database, session_id: ObjectId, user_id: ObjectId, stored: list[MessageOut]
) -> None:
    database.announce(MESSAGES, "insert", [m.model_dump(by_alias=True) for m in stored], user_id)
    session = await repository.find_owned_session(database.db, session_id, user_id)
    if session is not None:
        database.announce(SESSIONS, "update", [session], user_id)


async def message_count(database: Database, session_id: ObjectId, user_id: ObjectId) -> int | None:
    """The highest seq of the user's session now; None once it is gone."""
    document = await repository.find_owned_session(database.db, session_id, user_id)
    return None if document is None else int(document["message_count"])


async def messages_between(
    database: Database, session_id: ObjectId, after_seq: int, until_seq: int
) -> list[MessageOut]:
    """The messages with after_seq < seq <= until_seq, oldest first (a bounded index range)."""
    return [
        MessageOut.model_validate(d) for d in await stored_messages_between(database, session_id, after_seq, until_seq)
    ]


async def list_messages(
    database: Database,
    codec: CursorCodec,
    raw_session_id: str,
    user_id: ObjectId,
    limit: int,
    cursor: str | None,
    after_seq: int | None,
) -> MessagesPage:
    """Backwards by default: the newest page first, oldest to newest inside a page, and the
    cursor walks back by seq. With `after_seq`: the messages after it, oldest first, and the
    cursor walks forward. Either way pages never skip or repeat a message while new ones arrive.

    A page whose seq range the request fixes (all but the newest page) is read beside the
    session (its owner and message count), not after it: NotFound still comes first, and the
    page is then cut to the count, so it holds no more than a read after the session would."""
    session_id = _session_id(raw_session_id)
    try:
        position = _messages_position(codec, session_id, cursor, after_seq)
    except BadRequest:
        await _owned_or_404(database, session_id, user_id)
        raise
    fixed = _fixed_page_range(position, limit)
    documents: list[Document] = []
    if fixed is None:
        session = await _owned_or_404(database, session_id, user_id)
    else:
        session, documents = await asyncio.gather(
            _owned_or_404(database, session_id, user_id),
            repository.message_page(database.db, session_id, fixed.first, fixed.last),
        )
    newest = int(session["message_count"])
    if "after" in position:
        after = position["after"]
        if cursor is not None and after > newest:
            raise BadRequest("Invalid cursor")
        last = min(after + limit, newest)
        if last <= after:
            return MessagesPage(documents=[], next_cursor=None)
        documents = [document for document in documents if document["seq"] <= last]
        read_up_to = documents[-1]["seq"] if documents else after
        if read_up_to < last:  # deleted, or committed after the page was read: read what is missing
            documents += await repository.message_page(database.db, session_id, read_up_to + 1, last)
        next_position = {"after": last} if last < newest else None
    else:
        before = position.get("before", newest + 1)
        if before > newest + 1:
            raise BadRequest("Invalid cursor")
        page_range = message_page_range(before - 1, limit)
        if page_range is None:
            return MessagesPage(documents=[], next_cursor=None)
        if fixed is None:
            documents = await repository.message_page(database.db, session_id, page_range.first, page_range.last)
        next_position = {"before": page_range.first} if page_range.has_older else None
    next_cursor = codec.encode(_messages_cursor_kind(session_id), next_position) if next_position else None
    return MessagesPage(documents, next_cursor)


def _messages_position(
    codec: CursorCodec, session_id: ObjectId, cursor: str | None, after_seq: int | None
) -> dict[str, int]:
    """Where a messages page starts: {"after": seq}, {"before": seq} or, for the newest page,
    {} (its range ends at the session's message count)."""
    if cursor is None and after_seq is None:
        return {}
    if cursor is None:
        requested: dict[str, object] = {"after": after_seq}
    elif after_seq is not None:
        raise BadRequest("Give either after_seq or cursor, not both")
    else:
        requested = codec.decode(_messages_cursor_kind(session_id), cursor)
    for name, lowest in (("after", 0), ("before", 1)):
        value = requested.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= lowest:
            return {name: value}
    raise BadRequest("Invalid cursor")


def _fixed_page_range(position: dict[str, int], limit: int) -> SeqRange | None:
    """The seqs a page may hold when the request alone fixes them; None for the newest page."""
    if "after" in position:
        first = min(position["after"] + 1, MAX_SEQ)
        return SeqRange(first, min(position["after"] + limit, MAX_SEQ))
    if "before" in position:
        return SeqRange(max(1, position["before"] - limit), position["before"] - 1)
    return None


async def stored_messages_between(
    database: Database,
    session_id: ObjectId,
    after_seq: int,
    until_seq: int,
    transaction: AsyncClientSession | None = None,
) -> list[Document]:
    """messages_between as stored documents (with a door's `original`)."""
    if until_seq <= after_seq:
        return []
    return await repository.messages_in_seq_range(database.db, session_id, after_seq + 1, until_seq, transaction)


def _message_id(raw: str) -> ObjectId:
    try:
        return parse_object_id(raw)
    except ValueError as exc:
        raise NotFound(MESSAGE_NOT_FOUND) from exc


async def find_message(database: Database, session: Document, raw_message_id: str) -> Document:
    """The message of this (owned) session; NotFound alike for a malformed id, a missing
    message and another session's."""
    document = await repository.find_message(database.db, _message_id(raw_message_id))
    if document is None or document["session_id"] != session["_id"]:
        raise NotFound(MESSAGE_NOT_FOUND)
    return document


async def delete_message(database: Database, raw_session_id: str, user_id: ObjectId, raw_message_id: str) -> Document:
    """Delete one message and answer the session. Seqs are never reused (the next message
    still takes the next number), so readers that follow a session by seq miss nothing; a
    page read by seq range may then hold fewer messages than asked."""
    session_id = _session_id(raw_session_id)
    message_id = _message_id(raw_message_id)

    async def delete(session: AsyncClientSession | None) -> Document:
        await _owned_or_404(database, session_id, user_id, session)
        message = await repository.find_message(database.db, message_id, session)
        if message is None or message["session_id"] != session_id:
            raise NotFound(MESSAGE_NOT_FOUND)
        await repository.delete_message(database.db, message_id, session)
        await repository.update_session(database.db, session_id, {}, [], utc_now(), session)
        return await _owned_or_404(database, session_id, user_id, session)

    document = await run_in_transaction(
        database, delete, serialize_on=_session_lock(user_id, session_id), owner=user_id
    )
    database.announce(SESSIONS, "update", [document], user_id)
    return document
