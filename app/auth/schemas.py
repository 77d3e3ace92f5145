from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from app.core.types import DocumentModel, RequestModel, UTCDateTime

USERNAME_PATTERN = r"^[A-Za-z0-9._-]{3,32}$"
PASSWORD_MIN, PASSWORD_MAX = 8, 128
API_KEY_NAME_MAX = 100
API_KEY_MAX_DAYS = 3650  # the schema's bound; API_KEY_MAX_DAYS (setting) is the one enforced

Username = Annotated[str, StringConstraints(min_length=3, max_length=32, pattern=USERNAME_PATTERN)]
Password = Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
Role = Literal["user", "admin"]
Scope = Literal["read", "write"]
READ_SCOPES: tuple[Scope, ...] = ("read",)
ALL_SCOPES: tuple[Scope, ...] = ("read", "write")


class RegisterRequest(RequestModel):
    username: Username
    password: Password


class UserOut(DocumentModel):
    username: str
    role: Role = "user"
    created_at: UTCDateTime


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str = Field(description="Single use: POST it to /auths/refresh for a new pair")
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires")


class RefreshRequest(RequestModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class PasswordChange(RequestModel):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX)]
    new_password: Password


def _read_required(scopes: list[Scope]) -> tuple[Scope, ...]:
    chosen = set(scopes)
    if "read" not in chosen:
        raise ValueError('must be ["read"] or ["read", "write"]')
    return tuple(scope for scope in ALL_SCOPES if scope in chosen)


Scopes = Annotated[list[Scope], Field(min_length=1, max_length=2), AfterValidator(_read_required)]


class ApiKeyCreate(RequestModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=API_KEY_NAME_MAX)]
    scopes: Scopes
    expires_in_days: Annotated[int, Field(ge=1, le=API_KEY_MAX_DAYS)] | None = Field(
        default=None, description="Omitted: API_KEY_DEFAULT_DAYS; at most API_KEY_MAX_DAYS"
    )
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX)] = Field(
        description="Your password: creating a key is checked (and throttled) like a login"
    )


class ApiKeyOut(DocumentModel):
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart; not enough to use it")
    scopes: list[Scope]
    created_at: UTCDateTime
    last_used_at: UTCDateTime | None = Field(
        default=None, description="Updated at most every API_KEY_CACHE_SECONDS per server"
    )
    expires_at: UTCDateTime | None = Field(default=None, description="null only for keys made before expiry existed")


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown once, only its hash is stored")
