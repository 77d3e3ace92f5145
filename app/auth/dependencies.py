"""`CurrentUser`: the authenticated caller, from a bearer access token or an API key.

An access token is checked by its signature and claims and against the in-memory revocation
cache (app.auth.revocation): no database round trip, so a request's database commands are the
ones its work needs. An API key is looked up by its hash, cached for a few seconds.

Scopes: an API key with only `read` may call GET (and HEAD/OPTIONS) endpoints; anything else
answers 403. `SessionUser` is for account management (API keys, password, logout) and
administration, which an API key may never do, whatever its scopes: 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth.api_keys import ApiKeyCache
from app.auth.principal import WRITE, AuthenticatedUser
from app.auth.revocation import RevocationCache
from app.auth.throttle import PasswordAttempts
from app.core.config import Settings
from app.core.errors import Forbidden, Unauthorized
from app.core.hashing import PasswordHashing
from app.core.security import InvalidToken, decode_access_token, is_api_key
from app.core.types import parse_object_id

UNKNOWN_ADDRESS = "unknown"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auths/login", auto_error=False)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
INVALID_TOKEN = "Invalid or expired token"


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _revocations(request: Request) -> RevocationCache:
    cache: RevocationCache = request.app.state.revocations
    return cache


async def _attempts(request: Request) -> PasswordAttempts:
    attempts: PasswordAttempts = request.app.state.password_attempts
    return attempts


async def _hashing(request: Request) -> PasswordHashing:
    hashing: PasswordHashing = request.app.state.password_hashing
    return hashing


async def client_address(request: Request) -> str:
    """The peer's address, which password attempts are throttled per. uvicorn takes it from
    X-Forwarded-For only when the peer is a proxy it was told to trust."""
    return request.client.host if request.client else UNKNOWN_ADDRESS


SettingsDep = Annotated[Settings, Depends(_settings)]
Address = Annotated[str, Depends(client_address)]
Revocations = Annotated[RevocationCache, Depends(_revocations)]
Attempts = Annotated[PasswordAttempts, Depends(_attempts)]
Hashing = Annotated[PasswordHashing, Depends(_hashing)]


async def authenticate(request: Request, token: str | None) -> AuthenticatedUser:
    """Who the bearer token (an access token or an API key) belongs to, with its scopes; 401
    without valid credentials. Scopes are the caller's to enforce (see `current_user`)."""
    if not token:
        raise Unauthorized("Not authenticated")
    revocations: RevocationCache = request.app.state.revocations
    if is_api_key(token):
        api_keys: ApiKeyCache = request.app.state.api_keys
        return await api_keys.authenticate(request.app.state.database, revocations, token)
    return _from_access_token(request.app.state.settings, revocations, token)


async def current_user(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> AuthenticatedUser:
    user = await authenticate(request, token)
    if request.method not in READ_METHODS and WRITE not in user.scopes:
        raise Forbidden("This API key is read-only")
    return user


def _from_access_token(settings: Settings, revocations: RevocationCache, token: str) -> AuthenticatedUser:
    try:
        claims = decode_access_token(token, settings.jwt_secret.get_secret_value())
        user_id = parse_object_id(claims.subject)
    except (InvalidToken, ValueError) as exc:
        raise Unauthorized(INVALID_TOKEN) from exc
    if revocations.token_revoked(claims.subject, claims.token_id, claims.family_id, claims.issued_at):
        raise Unauthorized(INVALID_TOKEN)
    return AuthenticatedUser(user_id, claims.token_id, family_id=claims.family_id, expires_at=claims.expires_at)


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]


async def session_user(user: CurrentUser) -> AuthenticatedUser:
    if user.via_api_key:
        raise Forbidden("API keys cannot manage accounts or administer; log in with a password")
    return user


SessionUser = Annotated[AuthenticatedUser, Depends(session_user)]


async def any_scope_user(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> AuthenticatedUser:
    """The caller whatever its scopes: a read-only API key may still revoke itself."""
    return await authenticate(request, token)


AnyScopeUser = Annotated[AuthenticatedUser, Depends(any_scope_user)]
