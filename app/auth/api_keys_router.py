from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.auth import api_keys, service
from app.auth.dependencies import Address, AnyScopeUser, Attempts, Hashing, Revocations, SessionUser, SettingsDep
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.core.cursors import Cursors
from app.core.db import DatabaseDep
from app.core.errors import NotFound
from app.core.idempotency import IdempotencyKey
from app.core.pages import DEFAULT_PAGE_SIZE, Page, PageSize
from app.core.responses import NO_STORE, error_responses

router = APIRouter(prefix="/auths/api-keys", tags=["api keys"], responses=error_responses(400, 401, 403, 408, 413, 503))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated, responses=error_responses(409, 429))
async def create_api_key(
    body: ApiKeyCreate,
    user: SessionUser,
    database: DatabaseDep,
    settings: SettingsDep,
    attempts: Attempts,
    hashing: Hashing,
    address: Address,
    idempotency: IdempotencyKey,
) -> Response:
    """A new key for programs, returned once in `key`: store it now, only its hash is kept.
    Needs your current password (400 when wrong; throttled like a login). 409 past 50 keys.
    A retry with the same Idempotency-Key and body gets the same key back (kept sealed)."""
    await service.check_current_password(database, attempts, hashing, user.id, body.current_password, address)
    response = (await api_keys.create_api_key(database, settings, user.id, body, idempotency)).to_response()
    response.headers.update(NO_STORE)
    return response


@router.get("")
async def list_api_keys(
    user: SessionUser,
    database: DatabaseDep,
    cursors: Cursors,
    limit: Annotated[PageSize, Query(description="Items per page")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
) -> Page[ApiKeyOut]:
    """Your keys, oldest first."""
    return await api_keys.list_api_keys(database, cursors, user.id, limit, cursor)


@router.delete("/current", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404))
async def delete_current_api_key(user: AnyScopeUser, database: DatabaseDep, cache: Revocations) -> Response:
    """Revoke the API key this request is made with (`chat logout`): a key may end itself,
    though it manages no other key. 404 for a login's access token, which is no key."""
    if user.api_key_id is None:
        raise NotFound(api_keys.KEY_NOT_FOUND)
    await api_keys.delete_api_key(database, cache, user.id, str(user.api_key_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404))
async def delete_api_key(key_id: str, user: SessionUser, database: DatabaseDep, cache: Revocations) -> Response:
    """Revoke a key: it stops working on every server within seconds."""
    await api_keys.delete_api_key(database, cache, user.id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
