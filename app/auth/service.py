from __future__ import annotations

import asyncio
import re

from bson import ObjectId

from app.auth import repository
from app.auth.schemas import PASSWORD_MAX, USERNAME_PATTERN, TokenOut, UserOut
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import Unauthorized
from app.core.security import create_access_token, hash_password, verify_password

BAD_CREDENTIALS = "Incorrect username or password"
_USERNAME = re.compile(USERNAME_PATTERN)


async def register(database: Database, username: str, password: str) -> UserOut:
    password_hash = await asyncio.to_thread(hash_password, password)
    user_id = await repository.insert_user(database.db, username, password_hash)
    return await get_user(database, user_id)


async def get_user(database: Database, user_id: ObjectId) -> UserOut:
    document = await repository.find_user_by_id(database.db, user_id)
    if document is None:
        raise Unauthorized("User no longer exists")
    return UserOut.model_validate(document)


async def login(database: Database, settings: Settings, username: str, password: str) -> TokenOut:
    """A token for valid credentials; one answer, in similar time, for an unknown user and a
    wrong password (an unknown user is verified against a dummy hash)."""
    user = None
    if _USERNAME.match(username):
        user = await repository.find_user_by_username(database.db, username)
    stored_hash = user["password_hash"] if user else None
    matches, new_hash = await asyncio.to_thread(verify_password, password[: PASSWORD_MAX * 4], stored_hash)
    if user is None or not matches:
        raise Unauthorized(BAD_CREDENTIALS)
    if new_hash:
        await repository.set_password_hash(database.db, user["_id"], new_hash)
    token = create_access_token(str(user["_id"]), settings.jwt_secret.get_secret_value(), settings.access_token_minutes)
    return TokenOut(access_token=token.token, expires_in=token.expires_in)
