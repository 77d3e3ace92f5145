"""A page of messages is encoded straight from the stored documents: byte for byte what
`Page[MessageOut]` would answer, whatever the document holds, with times read tz-aware or as
naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from bson import Int64, ObjectId

from app.chat.message_json import MessagesPage
from app.chat.schemas import MessageOut, Page
from app.core.db import Document


def _stored(seq: int, **fields: object) -> Document:
    return {
        "_id": ObjectId(),
        "session_id": ObjectId(),
        "user_id": ObjectId(),
        "role": "user",
        "content": f"message {seq}",
        "metadata": {},
        "seq": seq,
        "created_at": datetime(2026, 12, 7, 10, 0, 0, 123000, tzinfo=UTC),
        **fields,
    }


def test_a_page_encodes_as_the_model_would() -> None:
    documents = [
        _stored(1),
        _stored(2, role="assistant", status="streaming", metadata={"model": "m", "agent": None}),
        _stored(3, metadata={"int64": Int64(2**63 - 1), "floats": [-0.0, 5e-324], "text": '𝄞 \u0000 "é"'}),
        _stored(4, content="", status=None, ours_only="never shown"),
        {key: value for key, value in _stored(5).items() if key != "metadata"},
    ]
    naive = [{**document, "created_at": document["created_at"].replace(tzinfo=None)} for document in documents]
    for cursor in (None, "next"):
        model = Page[MessageOut](items=[MessageOut.model_validate(d) for d in documents], next_cursor=cursor)
        assert MessagesPage(documents, cursor).json() == model.model_dump_json().encode()
        assert MessagesPage(naive, cursor).json() == model.model_dump_json().encode()
