from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.auth.dependencies import CurrentUser
from app.chat import named_append, service, session_list
from app.chat.dependencies import OwnedSession
from app.chat.replies import replier
from app.chat.schemas import (
    DEFAULT_PAGE_SIZE,
    PLATFORM_PATTERN,
    MessageBatch,
    MessageList,
    MessageOut,
    MessagePost,
    MessagesPageSize,
    MessageWithReply,
    NamedSessionAppended,
    NamedSessionMessages,
    Page,
    PageSize,
    SessionCreate,
    SessionName,
    SessionOut,
    SessionUpdate,
)
from app.core.cursors import Cursors
from app.core.db import DatabaseDep
from app.core.idempotency import IdempotencyKey
from app.core.responses import error_responses

router = APIRouter(prefix="/chat/sessions", tags=["chat"], responses=error_responses(400, 401, 403, 408, 413, 503))
NOT_FOUND = error_responses(404)
KEYED = error_responses(409)
CursorParam = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionOut,
    responses={200: {"model": SessionOut, "description": "You already have a session with this name"}, **KEYED},
)
async def create_session(
    body: SessionCreate, user: CurrentUser, database: DatabaseDep, idempotency: IdempotencyKey
) -> Response:
    """Create a session (201). With a `name` you already use: that session, unchanged (200)."""
    return (await service.create_session(database, user.id, body, idempotency)).to_response()


@router.post(
    "/by-name",
    status_code=status.HTTP_201_CREATED,
    response_model=NamedSessionAppended,
    responses={**KEYED, **error_responses(404)},
)
async def append_to_named_session(
    body: NamedSessionMessages, user: CurrentUser, database: DatabaseDep, idempotency: IdempotencyKey
) -> Response:
    """Append 1-100 messages to your session of this `name`; when you have none, it is created
    (with `title`, `platform` and `metadata`) in the same transaction as these messages, so a
    refused request leaves no empty session behind."""
    return (await named_append.append_to_named_session(database, user.id, body, idempotency)).to_response()


@router.get("")
async def list_sessions(
    user: CurrentUser,
    database: DatabaseDep,
    cursors: Cursors,
    limit: Annotated[PageSize, Query(description="Items per page")] = DEFAULT_PAGE_SIZE,
    cursor: CursorParam = None,
    name: Annotated[SessionName | None, Query(description="Only the session of this name (exact match)")] = None,
    platform: Annotated[str | None, Query(pattern=PLATFORM_PATTERN, description="Only this platform's")] = None,
) -> Page[SessionOut]:
    """Your sessions, most recently active first."""
    if name is not None:
        return await session_list.find_by_name(database, user.id, name)
    return await session_list.list_sessions(database, cursors, user.id, platform, limit, cursor)


@router.get("/{session_id}", responses=NOT_FOUND)
async def get_session(session: OwnedSession) -> SessionOut:
    return SessionOut.model_validate(session)


@router.patch("/{session_id}", responses={**NOT_FOUND, **error_responses(409)})
async def update_session(session_id: str, body: SessionUpdate, user: CurrentUser, database: DatabaseDep) -> SessionOut:
    """Change the title, the name (null removes it) or the metadata (JSON Merge Patch)."""
    return await service.update_session(database, session_id, user.id, body)


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_session(session_id: str, user: CurrentUser, database: DatabaseDep) -> Response:
    """Delete the session and all its messages."""
    await service.delete_session(database, session_id, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{session_id}/messages", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def clear_messages(session_id: str, user: CurrentUser, database: DatabaseDep) -> Response:
    """Delete all the session's messages and reset its counters (the next message is seq 1);
    the session stays. Idempotent."""
    await service.clear_messages(database, session_id, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{session_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageOut | MessageWithReply,
    responses={**NOT_FOUND, **KEYED, **error_responses(429)},
)
async def post_message(
    session_id: str,
    body: MessagePost,
    request: Request,
    user: CurrentUser,
    database: DatabaseDep,
    idempotency: IdempotencyKey,
) -> Response:
    """Append a message. With `reply`: the server also stores an assistant message after it and
    generates it (201 with `{message, reply}`; `Accept: text/event-stream` or `?stream=true`
    streams it in the response; 503 when no model is configured)."""
    target = body.reply_target
    if target is not None:
        return await replier(request).post_with_reply(request, user, session_id, body, target, idempotency)
    response = await service.append_messages(database, session_id, user.id, [body], idempotency, as_list=False)
    return response.to_response()


@router.post(
    "/{session_id}/messages/batch",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageList,
    responses={**NOT_FOUND, **KEYED},
)
async def post_messages(
    session_id: str, body: MessageBatch, user: CurrentUser, database: DatabaseDep, idempotency: IdempotencyKey
) -> Response:
    """Append 1-100 messages in one transaction, with consecutive seqs: all of them or none."""
    response = await service.append_messages(database, session_id, user.id, body.messages, idempotency, as_list=True)
    return response.to_response()


@router.get("/{session_id}/messages", response_model=Page[MessageOut], responses=NOT_FOUND)
async def list_messages(
    session_id: str,
    user: CurrentUser,
    database: DatabaseDep,
    cursors: Cursors,
    limit: Annotated[MessagesPageSize, Query(description="Items per page (up to 1,000)")] = DEFAULT_PAGE_SIZE,
    cursor: CursorParam = None,
    after_seq: Annotated[int | None, Query(ge=0, description="Only messages after this seq, oldest first")] = None,
) -> Response:
    """By default the newest page first, oldest to newest inside a page; next_cursor walks back
    in time. With `after_seq`: what came after it, oldest first; next_cursor walks forward and
    is null once you have caught up."""
    page = await service.list_messages(database, cursors, session_id, user.id, limit, cursor, after_seq)
    # Encoded straight from the documents (app.chat.message_json): a sync reads up to 1,000
    # messages a page, and FastAPI would validate and encode a model of each.
    return Response(page.json(), media_type="application/json")
