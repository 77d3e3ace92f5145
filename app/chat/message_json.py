"""A page of stored messages as the JSON the API answers, written straight from the documents.

`MessageOut` describes the same shape (and documents it in OpenAPI); building and validating
one model per message before encoding cost as much as the database read's own decoding on a
1,000-message page. The stored documents were validated when they were written, so a read only
renames `_id`'s type, formats the time and drops what is ours. A test holds this encoding and
`MessageOut`'s equal, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pydantic_core

from app.core.db import Document
from app.core.types import format_utc


def message_item(document: Document) -> dict[str, Any]:
    """The message as `MessageOut` serializes it, fields in the same order."""
    item: dict[str, Any] = {
        "_id": str(document["_id"]),
        "session_id": str(document["session_id"]),
        "user_id": str(document["user_id"]),
        "role": document["role"],
        "content": document["content"],
        "metadata": document.get("metadata", {}),
    }
    if document.get("status") is not None:
        item["status"] = document["status"]
    item["seq"] = document["seq"]
    item["created_at"] = format_utc(document["created_at"])
    return item


@dataclass(frozen=True)
class MessagesPage:
    documents: Sequence[Document]
    next_cursor: str | None

    def json(self) -> bytes:
        """`Page[MessageOut]` of these documents, encoded."""
        items = [message_item(document) for document in self.documents]
        return pydantic_core.to_json({"items": items, "next_cursor": self.next_cursor})
