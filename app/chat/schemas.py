from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, StringConstraints

from app.core.pages import DEFAULT_PAGE_SIZE as DEFAULT_PAGE_SIZE
from app.core.pages import MAX_PAGE_SIZE as MAX_PAGE_SIZE
from app.core.pages import Page as Page
from app.core.pages import PageSize as PageSize
from app.core.types import DocumentModel, PyObjectId, RequestModel, UTCDateTime

TITLE_MAX = 200
CONTENT_MAX = 32_000

Role = Literal["user", "assistant", "system", "tool"]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]


def _not_blank(content: str) -> str:
    if not content.strip():
        raise ValueError("must contain more than white space")
    return content


Content = Annotated[str, StringConstraints(min_length=1, max_length=CONTENT_MAX), AfterValidator(_not_blank)]


class SessionCreate(RequestModel):
    title: Title


class SessionUpdate(RequestModel):
    title: Title


class SessionOut(DocumentModel):
    user_id: PyObjectId
    title: str
    message_count: int
    last_message_at: UTCDateTime | None
    created_at: UTCDateTime
    updated_at: UTCDateTime


class MessageCreate(RequestModel):
    content: Content
    role: Role = "user"


class MessageOut(DocumentModel):
    session_id: PyObjectId
    user_id: PyObjectId
    role: Role
    content: str
    seq: int
    created_at: UTCDateTime
