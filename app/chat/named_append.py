"""Append to the session of a name, creating it with its first messages in one transaction.

A get-or-create followed by an append left an empty session behind whenever the append was
refused (a message that does not validate, a crash in between): here the session is created in
the transaction that stores its first messages, so a refused write stores nothing at all."""

from __future__ import annotations

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from app.chat import repository
from app.chat.schemas import NamedSessionAppended, NamedSessionMessages, SessionOut
from app.chat.service import SESSION_NOT_FOUND, NameTaken, announce_messages, run_once_naming, store_messages
from app.core.db import SESSIONS, Database, Document
from app.core.errors import NotFound
from app.core.idempotency import IdempotentRequest, StoredResponse
from app.core.types import utc_now


async def append_to_named_session(
    database: Database, user_id: ObjectId, body: NamedSessionMessages, idempotency: IdempotentRequest | None
) -> StoredResponse:
    """201 with the session, whether it was `created`, and the stored messages."""
    create = body.session_create()
    fields: Document = {"title": create.effective_title, "platform": create.platform, "metadata": create.metadata}
    fields["name"] = body.name

    created: list[bool] = []  # what the write that ran did (none ran when the response is replayed)

    async def write(session: AsyncClientSession | None) -> StoredResponse:
        created.clear()
        existing = await repository.find_named_session(database.db, user_id, body.name, session)
        if existing is None:
            try:
                session_id = await repository.insert_session(database.db, user_id, fields, utc_now(), session)
            except DuplicateKeyError as exc:
                raise NameTaken() from exc
        else:
            session_id = existing["_id"]
        stored = await store_messages(database, session_id, user_id, body.messages, session)
        document = await repository.find_owned_session(database.db, session_id, user_id, session)
        if document is None:
            raise NotFound(SESSION_NOT_FOUND)
        if database.publish_local is not None:  # no transaction here: this body runs once
            if existing is None:
                database.announce(SESSIONS, "insert", [document], user_id)
            await announce_messages(database, session_id, user_id, stored)
        out = SessionOut.model_validate(document)
        result = NamedSessionAppended(session=out, created=existing is None, items=stored)
        created.append(result.created)
        return StoredResponse(201, result.model_dump_json())

    response = await run_once_naming(database, user_id, idempotency, write, ("named-session", user_id, body.name))
    if not response.replayed and created == [True]:
        await repository.adjust_session_count(database.db, user_id, +1)
    return response
