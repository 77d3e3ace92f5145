from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.auth import api_keys
from app.auth.dependencies import Revocations, SessionUser
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.core.db import DatabaseDep
from app.core.responses import error_responses

router = APIRouter(prefix="/auths/api-keys", tags=["api keys"], responses=error_responses(400, 401, 403, 408, 413, 503))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(body: ApiKeyCreate, user: SessionUser, database: DatabaseDep) -> ApiKeyCreated:
    """A new key for programs, returned once in `key`: store it now, only its hash is kept."""
    return await api_keys.create_api_key(database, user.id, body)


@router.get("")
async def list_api_keys(user: SessionUser, database: DatabaseDep) -> list[ApiKeyOut]:
    return await api_keys.list_api_keys(database, user.id)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404))
async def delete_api_key(key_id: str, user: SessionUser, database: DatabaseDep, cache: Revocations) -> Response:
    """Revoke a key: it stops working on every server within seconds."""
    await api_keys.delete_api_key(database, cache, user.id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
