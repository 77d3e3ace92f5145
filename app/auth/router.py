from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from app.auth import service
from app.auth.dependencies import CurrentUser
from app.auth.schemas import RegisterRequest, TokenOut, UserOut
from app.core.db import DatabaseDep

router = APIRouter(prefix="/auths", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: RegisterRequest, database: DatabaseDep) -> UserOut:
    return await service.register(database, body.username, body.password)


@router.post("/login")
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, database: DatabaseDep
) -> TokenOut:
    return await service.login(database, request.app.state.settings, form.username, form.password)


@router.get("/me")
async def me(user: CurrentUser, database: DatabaseDep) -> UserOut:
    return await service.get_user(database, user.id)
