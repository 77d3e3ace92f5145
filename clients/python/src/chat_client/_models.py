"""The server's response models, typed (ids are strings, times aware datetimes in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

Role = Literal["user", "assistant", "system", "tool"]
T = TypeVar("T")


def _as_server_writes_it(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, as the server writes times: a model dumped
    in JSON mode reads exactly like the server's answer."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[datetime, PlainSerializer(_as_server_writes_it, return_type=str, when_used="json")]


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)


class Session(_Model):
    id: str = Field(alias="_id")
    user_id: str
    title: str
    name: str | None = None
    platform: str = "api"
    metadata: dict[str, Any] = Field(default_factory=dict)
    agent: str | None = None
    message_count: int
    last_message_at: Timestamp | None = None
    created_at: Timestamp
    updated_at: Timestamp


class Message(_Model):
    id: str = Field(alias="_id")
    session_id: str
    user_id: str
    role: Role
    content: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: str | None = None  # a reply the server generates: streaming, complete, failed, cancelled
    seq: int
    created_at: Timestamp


class MessageIn(_Model):
    """A message to append: what `POST .../messages` takes."""

    content: str
    role: Role = "user"
    metadata: dict[str, Any] = Field(default_factory=dict)


class Page(_Model, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class ImportCounts(_Model):
    created: int
    unchanged: int


class SkippedItem(_Model):
    conversation: str
    message: str | None = None  # the message's source id; None: the whole conversation
    reason: str


class ImportReport(_Model):
    """What `POST /chat/import` did: importing the same file again creates nothing."""

    format: str
    sessions: ImportCounts
    messages: ImportCounts
    skipped: list[SkippedItem]
    skipped_total: int


class User(_Model):
    id: str = Field(alias="_id")
    username: str


class Agent(_Model):
    """A preset an admin set up (model, instructions) that replies in sessions."""

    id: str = Field(alias="_id")
    name: str
    model: str
    instructions: str = ""
    temperature: float | None = None
    max_output_tokens: int | None = None
    description: str = ""
