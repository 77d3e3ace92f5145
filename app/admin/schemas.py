from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StringConstraints, model_validator

from app.auth.schemas import Password, Role, Username, UserOut
from app.core.types import RequestModel, UTCDateTime

SearchPrefix = Annotated[str, StringConstraints(max_length=32, pattern=r"^[A-Za-z0-9._-]*$")]


class AdminUserOut(UserOut):
    disabled: bool = False
    last_login_at: UTCDateTime | None = None


class AdminUserCreate(RequestModel):
    username: Username
    password: Password
    role: Role = "user"


class AdminUserUpdate(RequestModel):
    disabled: StrictBool | None = None
    role: Role | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> AdminUserUpdate:
        if self.disabled is None and self.role is None:
            raise ValueError("set `disabled`, `role` or both")
        return self


class PasswordReset(RequestModel):
    new_password: Password


class Activity(BaseModel):
    new_users: int = Field(description="Users created")
    active_users: int = Field(description="Users who logged in")
    active_sessions: int = Field(description="Chat sessions created, renamed or posted to")


class StatsOut(BaseModel):
    users: int
    sessions: int
    messages: int
    last_24h: Activity
