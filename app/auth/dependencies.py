"""`CurrentUser`: the authenticated caller, from a bearer access token.

Authentication checks the token's signature and claims only (no database round trip), so a
request's database commands are the ones its work needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from bson import ObjectId
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.core.config import Settings
from app.core.errors import Unauthorized
from app.core.security import InvalidToken, decode_access_token
from app.core.types import parse_object_id

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auths/login", auto_error=False)


@dataclass(frozen=True)
class AuthenticatedUser:
    id: ObjectId
    token_id: str


def current_user(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> AuthenticatedUser:
    if not token:
        raise Unauthorized("Not authenticated")
    settings: Settings = request.app.state.settings
    try:
        claims = decode_access_token(token, settings.jwt_secret.get_secret_value())
        user_id = parse_object_id(claims.subject)
    except (InvalidToken, ValueError) as exc:
        raise Unauthorized("Invalid or expired token") from exc
    return AuthenticatedUser(user_id, claims.token_id)


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
