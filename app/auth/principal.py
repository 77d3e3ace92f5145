"""Who is calling: a user, through a login session's access token or through an API key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId

READ = "read"
WRITE = "write"
SESSION_SCOPES = frozenset({READ, WRITE})


@dataclass(frozen=True)
class AuthenticatedUser:
    id: ObjectId
    token_id: str  # the access token's jti, or the API key's id
    family_id: str | None = None  # the login session (access tokens only)
    expires_at: datetime | None = None  # the access token's, or the API key's, expiry
    api_key_id: ObjectId | None = None
    scopes: frozenset[str] = SESSION_SCOPES

    @property
    def via_api_key(self) -> bool:
        return self.api_key_id is not None
