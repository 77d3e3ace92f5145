"""Password hashing and JWT access tokens as pure functions (no FastAPI, no database)."""

from __future__ import annotations

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
    expires_at: datetime


def create_access_token(subject: str, secret: str, minutes: int) -> AccessToken:
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
        "jti": uuid.uuid4().hex,
        "typ": ACCESS_TOKEN_TYPE,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
    }
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
    return TokenClaims(claims["sub"], str(claims["jti"]), datetime.fromtimestamp(claims["exp"], UTC))
