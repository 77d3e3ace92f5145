from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from app.chat.metadata import JsonObject, Metadata, MetadataPatch
from app.core.pages import DEFAULT_PAGE_SIZE as DEFAULT_PAGE_SIZE
from app.core.pages import MAX_PAGE_SIZE as MAX_PAGE_SIZE
from app.core.pages import Page as Page
from app.core.pages import PageSize as PageSize
from app.core.types import DocumentModel, PyObjectId, RequestModel, UTCDateTime

MAX_MESSAGES_PAGE_SIZE = 1000
MAX_BATCH = 100
TITLE_MAX = 200
NAME_MAX = 128
CONTENT_MAX = 32_000
DEFAULT_PLATFORM = "api"
PLATFORM_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"

Role = Literal["user", "assistant", "system", "tool"]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]
# Any character but the C0/C1 controls and DEL; matched exactly (no trimming), unique per user.
SessionName = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
Platform = Annotated[str, StringConstraints(pattern=PLATFORM_PATTERN)]
Content = Annotated[str, StringConstraints(max_length=CONTENT_MAX)]
MessagesPageSize = Annotated[int, Field(ge=1, le=MAX_MESSAGES_PAGE_SIZE)]


class SessionCreate(RequestModel):
    title: Title | None = Field(default=None, description="Required unless `name` is given (it defaults to the name)")
    name: SessionName | None = Field(
        default=None, description="Your own key for the session, unique among your sessions: get-or-create"
    )
    platform: Platform = DEFAULT_PLATFORM
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _title_or_name(self) -> SessionCreate:
        if self.title is None and self.name is None:
            raise ValueError("give a title, a name, or both")
        return self

    @property
    def effective_title(self) -> str:
        title = self.title or (self.name or "").strip()[:TITLE_MAX]
        return title or "Untitled"


class SessionUpdate(RequestModel):
    title: Title | None = None
    name: SessionName | None = Field(default=None, description="null removes the name")
    metadata: MetadataPatch | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> SessionUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of title, name and metadata")
        if "title" in self.model_fields_set and self.title is None:
            raise ValueError("title cannot be null")
        return self


class SessionOut(DocumentModel):
    user_id: PyObjectId
    title: str
    name: str | None = None
    platform: str = DEFAULT_PLATFORM
    metadata: JsonObject = Field(default_factory=dict)
    message_count: int
    last_message_at: UTCDateTime | None
    created_at: UTCDateTime
    updated_at: UTCDateTime


class MessageCreate(RequestModel):
    content: Content
    role: Role = "user"
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _content_needed(self) -> MessageCreate:
        """Only an assistant turn that carries metadata (tool calls) may have no text."""
        if not self.content.strip() and not (self.role == "assistant" and self.metadata):
            raise ValueError("content must contain more than white space (unless an assistant message has metadata)")
        return self


class MessageBatch(RequestModel):
    messages: list[MessageCreate] = Field(min_length=1, max_length=MAX_BATCH)


class MessageOut(DocumentModel):
    session_id: PyObjectId
    user_id: PyObjectId
    role: Role
    content: str
    metadata: JsonObject = Field(default_factory=dict)
    seq: int
    created_at: UTCDateTime


class MessageList(BaseModel):
    items: list[MessageOut]


class NamedSessionMessages(RequestModel):
    """Messages for the session of `name`; the other fields are the session's when it is new."""

    name: SessionName
    title: Title | None = Field(default=None, description="When the session is created (default: the name)")
    platform: Platform = DEFAULT_PLATFORM
    metadata: Metadata = Field(default_factory=dict, description="The session's, when it is created")
    messages: list[MessageCreate] = Field(min_length=1, max_length=MAX_BATCH)

    def session_create(self) -> SessionCreate:
        return SessionCreate(title=self.title, name=self.name, platform=self.platform, metadata=self.metadata)


class NamedSessionAppended(BaseModel):
    session: SessionOut
    created: bool = Field(description="Whether the session was created with these messages")
    items: list[MessageOut]
