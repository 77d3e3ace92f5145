from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import CurrentUser
from app.chat.service import find_owned_session
from app.core.db import DatabaseDep, Document


async def owned_session(session_id: str, user: CurrentUser, database: DatabaseDep) -> Document:
    """The path's session when it is the caller's; 404 alike for malformed, missing and foreign ids."""
    return await find_owned_session(database, session_id, user.id)


OwnedSession = Annotated[Document, Depends(owned_session)]
