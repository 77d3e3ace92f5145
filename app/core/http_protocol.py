"""uvicorn's h11 protocol with a deadline for each request's head (request line and headers).

uvicorn has no such timeout (its issue #157 lists one as missing): `timeout_keep_alive` is only
armed after a response and is reset by every byte received, so a connection that never sends a
byte, or trickles its headers, is held forever (the slowloris attack; measured: 50 half-sent
heads and 50 silent connections were all still open after 70 s). Here a connection must deliver
a complete request head within `header_timeout` seconds of opening, or of the end of its
previous response; otherwise it is closed. Once the head is in, the body's deadlines are the
application's (BodyLimitMiddleware), so a long response or a slow handler is never cut off.

Its h11 connection is strict about framing, as RFC 9112 asks of a server that may sit behind a
proxy which reads a request differently: a request with both Content-Length and
Transfer-Encoding (section 6.3: the way to smuggle a second request inside the first) and a
request head with bare LF line endings (section 2.2) answer 400 and the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

MAX_HEAD_BYTES = 16 * 1024  # h11's default (uvicorn's too)
_BARE_LF = re.compile(rb"(?<!\r)\n")


class StrictFramingConnection(h11.Connection):
    """h11, refusing the request heads it would otherwise accept with ambiguous framing."""

    def next_event(self) -> Any:
        reading_head = self.their_state is h11.IDLE
        before = self.trailing_data[0] if reading_head else b""
        event = super().next_event()
        if isinstance(event, h11.Request):
            head = before[: len(before) - len(self.trailing_data[0])]
            if _BARE_LF.search(head):
                raise h11.RemoteProtocolError("line endings must be CRLF", error_status_hint=400)
            names = {name for name, _ in event.headers}
            if b"content-length" in names and b"transfer-encoding" in names:
                raise h11.RemoteProtocolError("Content-Length and Transfer-Encoding together", error_status_hint=400)
        return event


class HeaderDeadlineH11Protocol(H11Protocol):
    header_timeout: float = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = StrictFramingConnection(h11.SERVER, config.h11_max_incomplete_event_size or MAX_HEAD_BYTES)
        self._header_deadline: asyncio.TimerHandle | None = None

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse, as JSON `{"detail"}` like every other
        error of this server; the connection is closed after it."""
        body = json.dumps({"detail": msg}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (h11.Response(status_code=400, headers=headers), h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request head was parsed: the application takes over
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._arm_header_deadline()  # before a pipelined request is handled (and disarms it)
        super().on_response_complete()

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        waiting_for_a_head = self.cycle is None or self.cycle.response_complete
        if waiting_for_a_head and not self.transport.is_closing():
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()


def with_header_deadline(header_timeout: float) -> type[HeaderDeadlineH11Protocol]:
    """The protocol class to pass to uvicorn as `http`, closing heads slower than `header_timeout`."""
    return type("HeaderDeadlineH11Protocol", (HeaderDeadlineH11Protocol,), {"header_timeout": header_timeout})
