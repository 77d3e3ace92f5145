from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.admin.service import require_admin
from app.auth.dependencies import SessionUser
from app.auth.principal import AuthenticatedUser
from app.core.db import DatabaseDep


async def admin_user(user: SessionUser, database: DatabaseDep) -> AuthenticatedUser:
    """The caller, when an enabled admin using a login session (never an API key); 403 otherwise."""
    await require_admin(database, user.id)
    return user


AdminUser = Annotated[AuthenticatedUser, Depends(admin_user)]
