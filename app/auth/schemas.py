from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from app.core.types import DocumentModel, RequestModel, UTCDateTime

USERNAME_PATTERN = r"^[A-Za-z0-9._-]{3,32}$"
PASSWORD_MIN, PASSWORD_MAX = 8, 128

Username = Annotated[str, StringConstraints(min_length=3, max_length=32, pattern=USERNAME_PATTERN)]
Password = Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]


class RegisterRequest(RequestModel):
    username: Username
    password: Password


class UserOut(DocumentModel):
    username: str
    created_at: UTCDateTime


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
