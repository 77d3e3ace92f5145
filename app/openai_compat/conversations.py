"""Conversations on our sessions, items on their messages, through chat's service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bson import ObjectId
from pydantic import ValidationError
from pydantic_core import to_json

from app.chat import service
from app.chat.schemas import TITLE_MAX, MessageCreate, SessionCreate, SessionUpdate
from app.core.db import Database, Document
from app.core.errors import BadRequest, NotFound
from app.core.idempotency import IdempotentRequest, StoredResponse
from app.openai_compat.errors import InvalidParameter
from app.openai_compat.items import bare_item_id, to_item, to_message
from app.openai_compat.schemas import ConversationCreate, Order

CONVERSATION_PREFIX = "conv_"
DEFAULT_PLATFORM = "openai"
DEFAULT_TITLE = "Conversation"
TITLE_FROM_TEXT_CHARS = 80
CONVERSATION_NOT_FOUND = "Conversation not found"
ITEM_NOT_FOUND = "Item not found"
_NOT_FOUND = {service.SESSION_NOT_FOUND: CONVERSATION_NOT_FOUND, service.MESSAGE_NOT_FOUND: ITEM_NOT_FOUND}
# Seq ranges read per step while filling a page over deleted items (each at most this wide).
MAX_RANGE = 1000


def conversation_id(session_id: object) -> str:
    return f"{CONVERSATION_PREFIX}{session_id}"


def bare_conversation_id(raw: str) -> str:
    return raw.removeprefix(CONVERSATION_PREFIX)


def conversation(session: Document) -> dict[str, Any]:
    return {
        "id": conversation_id(session["_id"]),
        "object": "conversation",
        "created_at": int(session["created_at"].timestamp()),
        "metadata": session.get("metadata") or {},
    }


def conversation_json(session: Document) -> str:
    return to_json(conversation(session)).decode()


def item_json(item: dict[str, Any]) -> str:
    return to_json(item).decode()


def deleted_json(raw_conversation_id: str) -> str:
    body = {"id": conversation_id(bare_conversation_id(raw_conversation_id)), "object": "conversation.deleted"}
    return to_json({**body, "deleted": True}).decode()


def item_list_json(items: list[dict[str, Any]], has_more: bool) -> str:
    first_id, last_id = (items[0]["id"], items[-1]["id"]) if items else (None, None)
    body = {"object": "list", "data": items, "first_id": first_id, "last_id": last_id, "has_more": has_more}
    return to_json(body).decode()


def messages_of(raw_items: list[dict[str, Any]] | None, param: str) -> tuple[list[MessageCreate], list[Document]]:
    """The messages the items are stored as, and the items to keep. A tool result sent with
    its call (as the Agents SDK sends a run) is labelled with the tool's name, as the UI shows
    tool results."""
    messages, originals = [], []
    tool_names: dict[str, str] = {}
    for index, raw in enumerate(raw_items or []):
        message, original = to_message(raw, f"{param}[{index}]")
        if original.get("type") == "function_call":
            tool_names[original["call_id"]] = original["name"]
        elif original.get("type") == "function_call_output" and original["call_id"] in tool_names:
            message.metadata["name"] = tool_names[original["call_id"]]
        messages.append(message)
        originals.append(original)
    return messages, originals


def _session_create(body: ConversationCreate, messages: list[MessageCreate]) -> SessionCreate:
    """A session named, titled and placed by the conversation's metadata, when it says so;
    titled by its first user text otherwise."""
    metadata = body.metadata or {}
    first_text = next((m.content for m in messages if m.role == "user" and m.content.strip()), "")
    title = metadata.get("title") or first_text.strip().split("\n", 1)[0][:TITLE_FROM_TEXT_CHARS] or None
    try:
        return SessionCreate(
            title=(title or metadata.get("name") or DEFAULT_TITLE)[:TITLE_MAX],
            name=metadata.get("name"),
            platform=metadata.get("platform", DEFAULT_PLATFORM),
            metadata=metadata,
        )
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors() and exc.errors()[0]["loc"] else ""
        raise InvalidParameter(f"metadata.{field}", f"'metadata.{field}' is not a valid {field}") from exc


async def create(
    database: Database, user_id: ObjectId, body: ConversationCreate, idempotency: IdempotentRequest | None
) -> StoredResponse:
    messages, originals = messages_of(body.items, "items")
    request = _session_create(body, messages)
    response = await service.create_session(
        database, user_id, request, idempotency, messages, originals, render=conversation_json
    )
    return StoredResponse(200, response.body, response.replayed)  # OpenAI answers 200 either way


@contextmanager
def _openai_not_found() -> Iterator[None]:
    """Chat's 404s in this door's words."""
    try:
        yield
    except NotFound as exc:
        raise NotFound(_NOT_FOUND.get(exc.detail, exc.detail)) from exc


async def owned(database: Database, raw_conversation_id: str, user_id: ObjectId) -> Document:
    with _openai_not_found():
        return await service.find_owned_session(database, bare_conversation_id(raw_conversation_id), user_id)


async def replace_metadata(
    database: Database, raw_conversation_id: str, user_id: ObjectId, metadata: dict[str, str]
) -> Document:
    update = SessionUpdate(metadata=metadata)
    with _openai_not_found():
        session = await service.update_session(
            database, bare_conversation_id(raw_conversation_id), user_id, update, replace_metadata=True
        )
    return session.model_dump(by_alias=True)


async def delete(database: Database, raw_conversation_id: str, user_id: ObjectId) -> None:
    with _openai_not_found():
        await service.delete_session(database, bare_conversation_id(raw_conversation_id), user_id)


async def append(
    database: Database,
    raw_conversation_id: str,
    user_id: ObjectId,
    raw_items: list[dict[str, Any]],
    idempotency: IdempotentRequest | None,
) -> StoredResponse:
    messages, originals = messages_of(raw_items, "items")

    def render(stored: list[Document]) -> str:
        return item_list_json([to_item(d) for d in stored], has_more=False)

    with _openai_not_found():
        response = await service.append_rendered(
            database, bare_conversation_id(raw_conversation_id), user_id, messages, originals, idempotency, render
        )
    return StoredResponse(200, response.body, response.replayed)


async def list_items(
    database: Database, session: Document, limit: int, order: Order, after: str | None
) -> tuple[list[dict[str, Any]], bool]:
    """A page of `limit` items after the item `after` (or from the start) in `order`, and
    whether there are more. Read by seq ranges (bounded index reads), widening over the gaps
    that deleted items leave."""
    newest = int(session["message_count"])
    if after is None:
        position = 0 if order == "asc" else newest + 1
    else:
        try:
            position = int((await service.find_message(database, session, bare_item_id(after)))["seq"])
        except NotFound as exc:
            raise BadRequest("'after' is not an item of this conversation") from exc
    wanted = limit + 1
    found: list[Document] = []
    width = wanted
    while len(found) < wanted:
        if order == "asc":
            if position >= newest:
                break
            upper = min(position + width, newest)
            found += await service.stored_messages_between(database, session["_id"], position, upper)
            position = upper
        else:
            if position <= 1:
                break
            lower = max(position - 1 - width, 0)
            found += reversed(await service.stored_messages_between(database, session["_id"], lower, position - 1))
            position = lower + 1
        width = min(width * 2, MAX_RANGE)
    return [to_item(d) for d in found[:limit]], len(found) > limit


async def get_item(database: Database, session: Document, raw_item_id: str) -> dict[str, Any]:
    with _openai_not_found():
        return to_item(await service.find_message(database, session, bare_item_id(raw_item_id)))


async def delete_item(database: Database, raw_conversation_id: str, user_id: ObjectId, raw_item_id: str) -> Document:
    with _openai_not_found():
        return await service.delete_message(
            database, bare_conversation_id(raw_conversation_id), user_id, bare_item_id(raw_item_id)
        )
