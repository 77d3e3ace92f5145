"""Password hashing, JWT access tokens, and opaque secrets (refresh tokens, API keys) as pure
functions (no FastAPI, no database)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "chat-server"
JWT_AUDIENCE = "chat-server"
ACCESS_TOKEN_TYPE = "access"
REFRESH_TOKEN_PREFIX = "crt_"
API_KEY_PREFIX = "cak_"
API_KEY_DISPLAY_CHARS = 8  # of the random part, shown in key listings to tell keys apart
_SECRET_BYTES = 32

# Argon2id for new hashes; bcrypt hashes (imported from older systems) verify and get rehashed.
password_hash = PasswordHash((Argon2Hasher(), BcryptHasher()))
# Verified against when a username is unknown, so that answer costs the same time as a wrong password.
DUMMY_HASH = password_hash.hash("dummy password for unknown users")


def hash_password(password: str) -> str:
    return password_hash.hash(password)


def verify_password(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    """(matches, a new hash to store when the stored one uses outdated parameters or algorithm)."""
    return password_hash.verify_and_update(password, stored_hash or DUMMY_HASH)


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    token_id: str
    issued_at: datetime
    expires_at: datetime
    family_id: str | None


def create_access_token(subject: str, secret: str, minutes: int, family_id: str | None = None) -> AccessToken:
    """`family_id` (claim `sid`) names the login session, i.e. the refresh-token family the
    access token was issued from, so that revoking the family revokes its access tokens."""
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": subject,
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
        "jti": uuid.uuid4().hex,
        "typ": ACCESS_TOKEN_TYPE,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
    }
    if family_id is not None:
        claims["sid"] = family_id
    return AccessToken(jwt.encode(claims, secret, algorithm=JWT_ALGORITHM), minutes * 60)


def decode_access_token(token: str, secret: str) -> TokenClaims:
    """The claims of a valid access token; InvalidToken for anything else (expired, tampered,
    another algorithm, another issuer or audience, or a token of another type)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            issuer=JWT_ISSUER,
            options={"require": ["sub", "exp", "iat", "jti", "typ", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if claims["typ"] != ACCESS_TOKEN_TYPE or not isinstance(claims["sub"], str):
        raise InvalidToken("not an access token")
    family_id = claims.get("sid")
    return TokenClaims(
        subject=claims["sub"],
        token_id=str(claims["jti"]),
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        family_id=family_id if isinstance(family_id, str) else None,
    )


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy random secret (a refresh token or an API key): enough to make a
    stolen database useless, and cheap, since such secrets cannot be guessed like passwords."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def is_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


def api_key_display_prefix(key: str) -> str:
    return key[: len(API_KEY_PREFIX) + API_KEY_DISPLAY_CHARS]
