"""Headers every response gets, in one pure ASGI middleware:

- `X-Content-Type-Options: nosniff` (a JSON body is never sniffed into HTML or script);
- `Cache-Control: no-store` on any response to a request carrying credentials (what a user
  reads with their token is not kept by a browser or a shared cache), unless the route chose;
- a redirect to this server is relative (`Location: /chat-ui/`): Starlette builds absolute
  ones from the request's Host header, which a client chooses (`Host: evil.example`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CREDENTIALS = b"authorization"


class ResponseHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = dict(scope["headers"])
        authenticated = CREDENTIALS in request_headers
        host = request_headers.get(b"host", b"").decode("latin-1").lower()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if authenticated:
                    headers.setdefault("Cache-Control", "no-store")
                location = headers.get("location")
                if location is not None and 300 <= message["status"] < 400:
                    headers["Location"] = _relative(location, host)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _relative(location: str, host: str) -> str:
    """`location` without its scheme and host when it points at `host` (this server)."""
    parts = urlsplit(location)
    if not parts.netloc or parts.netloc.lower() != host:
        return location
    path = parts.path or "/"
    if path.startswith("//"):  # would read as a host: keep one slash
        path = "/" + path.lstrip("/")
    return path + (f"?{parts.query}" if parts.query else "")
