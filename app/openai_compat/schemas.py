"""The Conversations API's request bodies, bounded as OpenAI bounds them (but for 100 items per
append: the Agents SDK sends a whole run's items at once), and its answers' shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from app.core.types import RequestModel

MAX_METADATA_PAIRS = 16
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 512
MAX_CREATE_ITEMS = 20
MAX_APPEND_ITEMS = 100
DEFAULT_ITEMS_PAGE = 20
MAX_ITEMS_PAGE = 100

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=METADATA_KEY_MAX)]
MetadataValue = Annotated[str, StringConstraints(max_length=METADATA_VALUE_MAX)]
OpenAIMetadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(
        max_length=MAX_METADATA_PAIRS,
        description="Up to 16 string pairs (keys up to 64 characters, values up to 512); `name` gives the "
        "conversation a name (get-or-create), `platform` its platform (default `openai`), `title` its title",
    ),
]
ItemsPageSize = Annotated[int, Field(ge=1, le=MAX_ITEMS_PAGE)]
Order = Literal["asc", "desc"]
# Items are checked one by one (items.to_message), so that an error names the item at fault.
RawItem = dict[str, Any]


class ConversationCreate(RequestModel):
    items: list[RawItem] | None = Field(default=None, max_length=MAX_CREATE_ITEMS)
    metadata: OpenAIMetadata | None = None
    safety_identifier: str | None = Field(default=None, max_length=64, description="Accepted and ignored")


class ConversationUpdate(RequestModel):
    metadata: OpenAIMetadata | None = Field(description="The new metadata, whole; null removes it all")


class ItemsCreate(RequestModel):
    items: list[RawItem] = Field(min_length=1, max_length=MAX_APPEND_ITEMS)


class ConversationOut(BaseModel):
    id: str = Field(description="`conv_` and the session's id")
    object: Literal["conversation"] = "conversation"
    created_at: int = Field(description="Unix seconds")
    metadata: dict[str, Any]


class ConversationDeleted(BaseModel):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True


class ItemOut(BaseModel):
    """An item as written (every field kept), with our `id` (`msg_` and the message's id)."""

    model_config = {"extra": "allow"}

    id: str
    type: str


class ItemList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ItemOut]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    error: ErrorBody
