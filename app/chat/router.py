from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.auth.dependencies import CurrentUser
from app.chat import service, session_list
from app.chat.dependencies import Cursors, OwnedSession
from app.chat.schemas import (
    DEFAULT_PAGE_SIZE,
    MessageCreate,
    MessageOut,
    Page,
    PageSize,
    SessionCreate,
    SessionOut,
    SessionUpdate,
)
from app.core.db import DatabaseDep
from app.core.responses import error_responses

router = APIRouter(prefix="/chat/sessions", tags=["chat"], responses=error_responses(400, 401, 403, 408, 413, 503))
NOT_FOUND = error_responses(404)
Limit = Annotated[PageSize, Query(description="Items per page")]
CursorParam = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_session(body: SessionCreate, user: CurrentUser, database: DatabaseDep) -> SessionOut:
    return await service.create_session(database, user.id, body.title)


@router.get("")
async def list_sessions(
    user: CurrentUser,
    database: DatabaseDep,
    cursors: Cursors,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: CursorParam = None,
) -> Page[SessionOut]:
    """Your sessions, most recently active first."""
    return await session_list.list_sessions(database, cursors, user.id, limit, cursor)


@router.get("/{session_id}", responses=NOT_FOUND)
async def get_session(session: OwnedSession) -> SessionOut:
    return SessionOut.model_validate(session)


@router.patch("/{session_id}", responses=NOT_FOUND)
async def rename_session(session_id: str, body: SessionUpdate, user: CurrentUser, database: DatabaseDep) -> SessionOut:
    return await service.rename_session(database, session_id, user.id, body.title)


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_session(session_id: str, user: CurrentUser, database: DatabaseDep) -> Response:
    """Delete the session and all its messages."""
    await service.delete_session(database, session_id, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{session_id}/messages", status_code=status.HTTP_201_CREATED, responses=NOT_FOUND)
async def post_message(session_id: str, body: MessageCreate, user: CurrentUser, database: DatabaseDep) -> MessageOut:
    return await service.post_message(database, session_id, user.id, body)


@router.get("/{session_id}/messages", responses=NOT_FOUND)
async def list_messages(
    session: OwnedSession,
    database: DatabaseDep,
    cursors: Cursors,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: CursorParam = None,
) -> Page[MessageOut]:
    """The newest page first, oldest to newest inside a page; next_cursor walks back in time."""
    return await service.list_messages(database, cursors, session, limit, cursor)
