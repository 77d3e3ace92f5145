"""Following a session's event stream, shared by both clients: which seq to resume after,
which events are messages, and how long to wait before reconnecting."""

from __future__ import annotations

import random

from httpx_sse import ServerSentEvent

from chat_client import _core
from chat_client._core import Call
from chat_client._exceptions import APIConnectionError
from chat_client._models import Message

MESSAGE_CREATED = "message.created"
RESET = "reset"


class FollowState:
    def __init__(self, after_seq: int, max_reconnects: int) -> None:
        self.last_seq = after_seq
        self.max_reconnects = max_reconnects
        self.failures = 0
        self.ever_connected = False
        self.must_reconnect = False
        self._received = 0

    def call(self, session_id: str) -> Call:
        """Resume after the last seq received: the server replays what came after it, then live."""
        return Call("GET", f"/chat/sessions/{session_id}/events", params={"after_seq": self.last_seq})

    def connected(self) -> None:
        self.ever_connected = True
        self.must_reconnect = False
        self._received = 0

    def accept(self, event: ServerSentEvent) -> Message | None:
        if event.event == RESET:
            self.must_reconnect = True
            return None
        if event.event != MESSAGE_CREATED:
            return None
        message = Message.model_validate_json(event.data)
        self._received += 1
        self.failures = 0
        self.last_seq = message.seq
        return message

    def failed(self, error: Exception) -> float:
        """Seconds to wait before reconnecting; raises `error` after too many failures in a row."""
        self.failures += 1
        if self.failures > self.max_reconnects:
            raise error
        return self._backoff()

    def ended(self) -> float:
        """The server ended the stream (its credentials expired, or a reset): reconnect; a
        stream that ends again and again without a message counts as a failure."""
        if self._received:
            return 0.0
        return self.failed(APIConnectionError("The event stream keeps ending"))

    def _backoff(self) -> float:
        delay = min(_core.MAX_RETRY_DELAY, _core.INITIAL_RETRY_DELAY * 2 ** (self.failures - 1))
        jittered: float = delay * random.uniform(0.75, 1.0)
        return jittered
