"""Replies the server generates (`reply` on a posted message), read as they stream.

The post is sent with `?stream=true` and one Idempotency-Key: when the stream drops, the same
post is sent again, the server replays it (no second message, no second generation) and
streams the reply from its stored text; `ReplyReader` skips what was already yielded."""

from __future__ import annotations

import json
from typing import Any

from httpx_sse import ServerSentEvent

from chat_client._core import Call, new_idempotency_key
from chat_client._models import Message, MessageIn

CREATED = "reply.created"
DELTA = "reply.delta"
DONE = "reply.done"


def ask_call(
    session_id: str,
    message: MessageIn,
    agent: str | None,
    model: str | None,
    key: str | None,
) -> Call:
    reply: Any = True
    if agent is not None:
        reply = {"agent": agent}
    elif model is not None:
        reply = {"model": model}
    body = {**message.model_dump(mode="json"), "reply": reply}
    return Call(
        "POST",
        f"/chat/sessions/{session_id}/messages",
        params={"stream": "true"},
        json=body,
        idempotency_key=key or new_idempotency_key(),
    )


def cancel_call(session_id: str, message_id: str) -> Call:
    return Call("POST", f"/chat/sessions/{session_id}/messages/{message_id}/cancel")


class ReplyReader:
    """Follows one reply across reconnections: the text added (never twice), then the final
    message."""

    def __init__(self) -> None:
        self.question: Message | None = None
        self.reply: Message | None = None
        self.final: Message | None = None
        self._yielded = 0
        self._received = 0

    def connected(self) -> None:
        self._received = 0  # a replayed stream starts from the stored text

    def accept(self, event: ServerSentEvent) -> str | None:
        """The new text in `event`, if any."""
        if event.event == CREATED:
            data = json.loads(event.data)
            self.question = Message.model_validate(data["message"])
            self.reply = Message.model_validate(data["reply"])
        elif event.event == DELTA:
            text: str = json.loads(event.data)["text"]
            self._received += len(text)
            fresh = self._received - self._yielded
            if fresh > 0:
                self._yielded = self._received
                return text[-fresh:]
        elif event.event == DONE:
            self.final = Message.model_validate_json(event.data)
        return None
