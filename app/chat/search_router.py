from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth.dependencies import CurrentUser
from app.auth.heavy import heavy_request
from app.chat.schemas import DEFAULT_PAGE_SIZE, PLATFORM_PATTERN, Page, PageSize
from app.chat.search import scope_of, search
from app.chat.search_schemas import MAX_QUERY_CHARS, SearchHit
from app.core.cursors import Cursors
from app.core.db import DatabaseDep
from app.core.responses import error_responses

router = APIRouter(prefix="/chat", tags=["search"], responses=error_responses(400, 401, 404, 408, 503))


@router.get("/search", dependencies=[Depends(heavy_request("search"))], responses=error_responses(429))
async def search_chats(
    user: CurrentUser,
    database: DatabaseDep,
    cursors: Cursors,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="Words to find")],
    limit: Annotated[PageSize, Query(description="Hits per page at most")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
    session_id: Annotated[str | None, Query(description="Only in this session")] = None,
    platform: Annotated[str | None, Query(pattern=PLATFORM_PATTERN, description="Only this platform's")] = None,
) -> Page[SearchHit]:
    """Your messages and session titles holding every word of `q` (case and accents ignored;
    the last word may be the start of a word), newest first. A page may hold fewer hits than
    `limit` (each reads a bounded part of your history): follow `next_cursor` until it is null."""
    scope = await scope_of(database, user.id, session_id, platform)
    return await search(database, cursors, scope, q, limit, cursor)
