from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app.auth import login_sessions, service
from app.auth.dependencies import Address, Attempts, CurrentUser, Hashing, Revocations, SessionUser, SettingsDep
from app.auth.schemas import PasswordChange, RefreshRequest, RegisterRequest, TokenOut, UserOut
from app.core.db import DatabaseDep
from app.core.responses import NO_STORE, error_responses

router = APIRouter(prefix="/auths", tags=["auth"], responses=error_responses(400, 401, 403, 408, 413, 503))
THROTTLED = error_responses(429)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses={**THROTTLED, **error_responses(409)},
)
async def register(
    body: RegisterRequest, database: DatabaseDep, settings: SettingsDep, hashing: Hashing, address: Address
) -> UserOut:
    return await service.register(database, settings, hashing, body.username, body.password, address)


@router.post("/login", responses=THROTTLED)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    response: Response,
    database: DatabaseDep,
    settings: SettingsDep,
    attempts: Attempts,
    hashing: Hashing,
    address: Address,
) -> TokenOut:
    """An access token (short-lived) and a refresh token (single use) for a username and password."""
    response.headers.update(NO_STORE)
    return await service.login(database, settings, attempts, hashing, form.username, form.password, address)


@router.post("/refresh", responses=THROTTLED)
async def refresh(
    body: RefreshRequest, response: Response, database: DatabaseDep, settings: SettingsDep, cache: Revocations
) -> TokenOut:
    """A new token pair; the refresh token presented stops working. Presenting a used one
    again logs that session out everywhere."""
    response.headers.update(NO_STORE)
    return await login_sessions.rotate(database, settings, cache, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(user: SessionUser, database: DatabaseDep, settings: SettingsDep, cache: Revocations) -> Response:
    """End this login session: its refresh token and the access token in use stop working."""
    await service.logout(database, settings, cache, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/logout-everywhere", status_code=status.HTTP_204_NO_CONTENT)
async def logout_everywhere(
    user: SessionUser, database: DatabaseDep, settings: SettingsDep, cache: Revocations
) -> Response:
    """End every login session of yours, this one included (other browsers and devices within
    REVOCATION_POLL_SECONDS). API keys keep working: revoke them one by one."""
    await service.logout_everywhere(database, settings, cache, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT, responses=THROTTLED)
async def change_password(
    body: PasswordChange,
    user: SessionUser,
    database: DatabaseDep,
    settings: SettingsDep,
    cache: Revocations,
    attempts: Attempts,
    hashing: Hashing,
    address: Address,
) -> Response:
    """Change your password; your other sessions are logged out (this one stays) and your API
    keys are revoked."""
    await service.change_password(
        database, settings, cache, attempts, hashing, user, body.current_password, body.new_password, address
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me")
async def me(user: CurrentUser, database: DatabaseDep) -> UserOut:
    return await service.get_user(database, user.id)
