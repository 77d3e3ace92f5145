"""Pure ASGI middleware: request ids and access logs, and the request body limits."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import error_response
from app.core.logging import request_id_var

log = logging.getLogger("app.access")
REQUEST_ID_HEADER = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
TOO_LARGE = "Request body too large"
TOO_SLOW = "Timed out reading the request body"


class RequestContextMiddleware:
    """Gives each request an id (a sane incoming X-Request-ID, or a new one), echoes it in the
    response, binds it to the logs, and writes one access-log line per request. Its `client`
    is the peer's address, or X-Forwarded-For's when the peer is in FORWARDED_ALLOW_IPS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
        request_id = incoming.decode() if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "client": scope["client"][0] if scope.get("client") else None,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """413 for bodies over `max_bytes` (declared or streamed), and 408 for a client that stops
    sending its body for `read_timeout` seconds or has not sent all of it `total_timeout` seconds
    after its headers (a body trickled a byte at a time otherwise holds a connection for as long
    as the client likes: measured, 1 byte every 20 s was held 80 s and more). `path_limits`
    gives smaller limits to paths under some prefixes (account and admin routes take a few
    hundred bytes; only chat routes have a reason to take more).

    The errors are raised from `receive` as HTTPException, which FastAPI passes through its
    body parsing to the exception handlers, so they render as `{"detail": ...}`. A 408 closes
    the connection: the rest of that body is not worth reading.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        read_timeout: float,
        total_timeout: float,
        path_limits: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.path_limits = path_limits

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.path_limits:
            if path == prefix or path.startswith(prefix + "/"):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            response = error_response(413, TOO_LARGE, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0
        deadline = time.monotonic() + self.total_timeout
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # past the body, receive() waits for a disconnect: no deadline
                return await receive()
            wait = min(self.read_timeout, deadline - time.monotonic())
            try:
                if wait <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), wait)
            except TimeoutError as exc:
                raise HTTPException(408, TOO_SLOW, headers={"Connection": "close"}) from exc
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise HTTPException(413, TOO_LARGE)
                body_done = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)
