from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.admin import service
from app.admin.dependencies import AdminUser
from app.admin.schemas import AdminUserCreate, AdminUserOut, AdminUserUpdate, PasswordReset, SearchPrefix, StatsOut
from app.auth.dependencies import Hashing, Revocations, SettingsDep
from app.chat.schemas import DEFAULT_PAGE_SIZE, Page, PageSize
from app.core.cursors import Cursors
from app.core.db import DatabaseDep
from app.core.responses import error_responses

router = APIRouter(prefix="/admin", tags=["admin"], responses=error_responses(400, 401, 403, 408, 409, 413, 503))
NOT_FOUND = error_responses(404)


@router.get("/users")
async def list_users(
    admin: AdminUser,
    database: DatabaseDep,
    cursors: Cursors,
    q: Annotated[SearchPrefix, Query(description="Usernames starting with this, any case")] = "",
    limit: Annotated[PageSize, Query(description="Items per page")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
) -> Page[AdminUserOut]:
    """Users in name order."""
    return await service.list_users(database, cursors, q, limit, cursor)


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(body: AdminUserCreate, admin: AdminUser, database: DatabaseDep, hashing: Hashing) -> AdminUserOut:
    """Create a user (the way in when ALLOW_REGISTRATION is false)."""
    return await service.create_user(database, hashing, admin.id, body.username, body.password, body.role)


@router.patch("/users/{user_id}", responses=NOT_FOUND)
async def update_user(
    user_id: str,
    body: AdminUserUpdate,
    admin: AdminUser,
    database: DatabaseDep,
    settings: SettingsDep,
    cache: Revocations,
) -> AdminUserOut:
    """Disable or enable a user, or change the role. A disabled user is logged out everywhere."""
    return await service.update_user(database, settings, cache, admin.id, user_id, body)


@router.post("/users/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def reset_password(
    user_id: str,
    body: PasswordReset,
    admin: AdminUser,
    database: DatabaseDep,
    settings: SettingsDep,
    cache: Revocations,
    hashing: Hashing,
) -> Response:
    """Set a user's password; the user is logged out everywhere and their API keys are revoked."""
    await service.reset_password(database, settings, cache, hashing, admin.id, user_id, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_user(
    user_id: str, admin: AdminUser, database: DatabaseDep, settings: SettingsDep, cache: Revocations
) -> Response:
    """Delete a user with their API keys, sessions and messages."""
    await service.delete_user(database, settings, cache, admin.id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/stats")
async def stats(admin: AdminUser, database: DatabaseDep) -> StatsOut:
    """Totals, and activity in the last 24 hours."""
    return await service.stats(database)
