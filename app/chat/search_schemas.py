from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.chat.schemas import Role
from app.core.types import PyObjectId, UTCDateTime

MAX_QUERY_CHARS = 500


class HitSession(BaseModel):
    id: PyObjectId
    title: str
    platform: str


class HitMessage(BaseModel):
    id: PyObjectId
    seq: int
    role: Role
    created_at: UTCDateTime


class HitSnippet(BaseModel):
    text: str = Field(description="Plain text around the first match (never HTML)")
    highlights: list[tuple[int, int]] = Field(
        description="[start, end) of each matched word in `text`, in Unicode code points"
    )
    truncated_start: bool = Field(description="`text` starts inside the original text")
    truncated_end: bool = Field(description="`text` ends before the end of the original text")


class SearchHit(BaseModel):
    kind: Literal["message", "title"] = Field(description="A message matched, or the session's title")
    session: HitSession
    message: HitMessage | None = Field(description="The message that matched; null for a title hit")
    snippet: HitSnippet
