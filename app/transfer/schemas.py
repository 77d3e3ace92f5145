from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ImportFormat = Literal["chat-export", "chatgpt-json", "chatgpt-zip"]
MAX_SKIPPED_LISTED = 1000


class ImportCounts(BaseModel):
    created: int = 0
    unchanged: int = 0


class SkippedItem(BaseModel):
    conversation: str = Field(description="The conversation's title (or its place in the file)")
    message: str | None = Field(default=None, description="The message's source id; null: the whole conversation")
    reason: str


class NameLeftOut(BaseModel):
    conversation: str = Field(description="The conversation's title")
    name: str = Field(description="The name it had, which another of your sessions has")


class ImportReport(BaseModel):
    format: ImportFormat
    sessions: ImportCounts = Field(default_factory=ImportCounts)
    messages: ImportCounts = Field(default_factory=ImportCounts)
    skipped: list[SkippedItem] = Field(
        default_factory=list, description=f"What was not imported and why (the first {MAX_SKIPPED_LISTED})"
    )
    skipped_total: int = 0
    created_without_name: list[NameLeftOut] = Field(
        default_factory=list,
        description="Sessions created without their name, which another of your sessions has "
        f"(the first {MAX_SKIPPED_LISTED})",
    )

    def left_out_name(self, conversation: str, name: str) -> None:
        if len(self.created_without_name) < MAX_SKIPPED_LISTED:
            self.created_without_name.append(NameLeftOut(conversation=conversation, name=name))

    def skip(self, conversation: str, message: str | None, reason: str) -> None:
        self.skipped_total += 1
        if len(self.skipped) < MAX_SKIPPED_LISTED:
            self.skipped.append(SkippedItem(conversation=conversation, message=message, reason=reason))


class RejectionDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ImportRejected(BaseModel):
    detail: list[RejectionDetail]
