"""The /v1 door, with our API keys or access tokens as the bearer token: OpenAI's
Conversations API on our sessions and messages (the official SDKs, the Agents SDK's
OpenAIConversationsSession), and the Chat Completions gateway (/v1/models,
/v1/chat/completions) on the assistant's upstream, recorded into our sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import openai
from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk

from app.assistant.dependencies import AssistantDep
from app.auth.dependencies import CurrentUser, SettingsDep
from app.chat.schemas import SessionName
from app.core.db import DatabaseDep
from app.core.errors import NotFound
from app.core.idempotency import REPLAYED_HEADER, IdempotencyKey
from app.openai_compat import completions, conversations, recorded
from app.openai_compat.completions import CompletionRequest
from app.openai_compat.errors import OpenAIRoute, openai_error_responses
from app.openai_compat.schemas import (
    DEFAULT_ITEMS_PAGE,
    ConversationCreate,
    ConversationDeleted,
    ConversationOut,
    ConversationUpdate,
    ItemList,
    ItemOut,
    ItemsCreate,
    ItemsPageSize,
    Order,
)

router = APIRouter(route_class=OpenAIRoute)
conversation_routes = APIRouter(
    prefix="/v1/conversations",
    tags=["openai"],
    route_class=OpenAIRoute,
    responses=openai_error_responses(400, 401, 403, 503),
)
NOT_FOUND = openai_error_responses(404)
KEYED = openai_error_responses(404, 409)
IdParam = Annotated[str, Query(max_length=64)]
Include = Annotated[list[str] | None, Query(max_length=16, description="Accepted and ignored: items come whole")]


def _json(body: str) -> Response:
    return Response(body, media_type="application/json")


@conversation_routes.post("", response_model=ConversationOut, responses=openai_error_responses(409))
async def create_conversation(
    body: ConversationCreate, user: CurrentUser, database: DatabaseDep, idempotency: IdempotencyKey
) -> Response:
    """A new conversation with up to 20 items; with `metadata.name` you already use, that
    conversation (items are then not added)."""
    return (await conversations.create(database, user.id, body, idempotency)).to_response()


@conversation_routes.get("/{conversation_id}", response_model=ConversationOut, responses=NOT_FOUND)
async def get_conversation(conversation_id: str, user: CurrentUser, database: DatabaseDep) -> Response:
    session = await conversations.owned(database, conversation_id, user.id)
    return _json(conversations.conversation_json(session))


@conversation_routes.post("/{conversation_id}", response_model=ConversationOut, responses=NOT_FOUND)
async def update_conversation(
    conversation_id: str, body: ConversationUpdate, user: CurrentUser, database: DatabaseDep
) -> Response:
    """Replace the conversation's metadata."""
    session = await conversations.replace_metadata(database, conversation_id, user.id, body.metadata or {})
    return _json(conversations.conversation_json(session))


@conversation_routes.delete("/{conversation_id}", response_model=ConversationDeleted, responses=NOT_FOUND)
async def delete_conversation(conversation_id: str, user: CurrentUser, database: DatabaseDep) -> Response:
    await conversations.delete(database, conversation_id, user.id)
    return _json(conversations.deleted_json(conversation_id))


@conversation_routes.get("/{conversation_id}/items", response_model=ItemList, responses=NOT_FOUND)
async def list_items(
    conversation_id: str,
    user: CurrentUser,
    database: DatabaseDep,
    limit: Annotated[ItemsPageSize, Query()] = DEFAULT_ITEMS_PAGE,
    order: Annotated[Order, Query()] = "desc",
    after: IdParam | None = None,
    include: Include = None,
) -> Response:
    """A page of items, newest first by default; `after` is the last id of the previous page."""
    session = await conversations.owned(database, conversation_id, user.id)
    items, has_more = await conversations.list_items(database, session, limit, order, after)
    return _json(conversations.item_list_json(items, has_more))


@conversation_routes.post("/{conversation_id}/items", response_model=ItemList, responses=KEYED)
async def create_items(
    conversation_id: str,
    body: ItemsCreate,
    user: CurrentUser,
    database: DatabaseDep,
    idempotency: IdempotencyKey,
    include: Include = None,
) -> Response:
    """Append 1-100 items in one transaction, in order: all of them or none."""
    return (await conversations.append(database, conversation_id, user.id, body.items, idempotency)).to_response()


@conversation_routes.get("/{conversation_id}/items/{item_id}", response_model=ItemOut, responses=NOT_FOUND)
async def get_item(
    conversation_id: str, item_id: str, user: CurrentUser, database: DatabaseDep, include: Include = None
) -> Response:
    session = await conversations.owned(database, conversation_id, user.id)
    return _json(conversations.item_json(await conversations.get_item(database, session, item_id)))


@conversation_routes.delete("/{conversation_id}/items/{item_id}", response_model=ConversationOut, responses=NOT_FOUND)
async def delete_item(conversation_id: str, item_id: str, user: CurrentUser, database: DatabaseDep) -> Response:
    """Delete an item; answers the conversation."""
    session = await conversations.delete_item(database, conversation_id, user.id, item_id)
    return _json(conversations.conversation_json(session))


router.include_router(conversation_routes)


@router.get("/v1/models", tags=["openai"], responses=openai_error_responses(400, 401, 503))
async def list_models(user: CurrentUser, assistant: AssistantDep) -> Response:
    """The agents (and with MODEL_ALLOW_ANY the upstream's models), in OpenAI's list shape."""
    choices = await assistant.choices()
    data = [{"id": c.id, "object": "model", "created": 0, "owned_by": c.kind} for c in choices.items]
    return JSONResponse({"object": "list", "data": data})


@router.post(
    "/v1/chat/completions", tags=["openai"], responses=openai_error_responses(400, 401, 403, 404, 409, 429, 503)
)
async def chat_completions(
    body: CompletionRequest,
    user: CurrentUser,
    database: DatabaseDep,
    settings: SettingsDep,
    assistant: AssistantDep,
    idempotency: IdempotencyKey,
    session_name: Annotated[SessionName | None, Header(alias=completions.SESSION_HEADER)] = None,
) -> Response:
    """A completion through the configured upstream (an agent's name as `model`), streamed or
    whole, recorded into a session as it streams (see README). A retry with the same
    Idempotency-Key is answered from the stored reply."""
    call = await completions.prepare(database, settings, body, session_name, user.id)
    if not call.record:
        if not body.stream:
            return JSONResponse(await completions.complete(assistant, call))
        chunks = await completions.open_stream(assistant, call)
        return _event_stream(_unrecorded(chunks))
    if body.stream:
        events, replayed = await recorded.streamed(assistant, database, user.id, call, body.messages, idempotency)
        return _event_stream(events, {REPLAYED_HEADER: "true"} if replayed else None)
    started = await recorded.start(assistant, database, user.id, call, body.messages, idempotency)
    replay_headers = {REPLAYED_HEADER: "true"} if started.replayed else None
    reply = await recorded.ended(assistant, started.reply_id)
    if started.answers:
        return JSONResponse(started.answers[0])
    return JSONResponse(recorded.whole_answer(reply), headers=replay_headers)


def _event_stream(events: AsyncIterator[str], headers: dict[str, str] | None = None) -> StreamingResponse:
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", **(headers or {})}
    )


async def _unrecorded(chunks: AsyncStream[ChatCompletionChunk]) -> AsyncIterator[str]:
    try:
        async for event in completions.passed_on(chunks):
            yield event
    except (openai.OpenAIError, httpx.HTTPError):
        yield recorded.STOPPED
        return
    yield recorded.DONE


@router.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def unknown_route(path: str) -> Response:
    """Any other /v1 path or method: a 404 in OpenAI's shape, as the SDKs expect."""
    raise NotFound("Unknown route: this server offers /v1/conversations (see README)")
