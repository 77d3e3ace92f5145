"""The server's response models, typed (ids are strings, times aware datetimes in UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["user", "assistant", "system", "tool"]
T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)


class Session(_Model):
    id: str = Field(alias="_id")
    user_id: str
    title: str
    name: str | None = None
    platform: str = "api"
    metadata: dict[str, Any] = Field(default_factory=dict)
    message_count: int
    last_message_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class Message(_Model):
    id: str = Field(alias="_id")
    session_id: str
    user_id: str
    role: Role
    content: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    seq: int
    created_at: datetime


class MessageIn(_Model):
    """A message to append: what `POST .../messages` takes."""

    content: str
    role: Role = "user"
    metadata: dict[str, Any] = Field(default_factory=dict)


class Page(_Model, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class User(_Model):
    id: str = Field(alias="_id")
    username: str
