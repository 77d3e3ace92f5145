"""httpx transports that pass requests to the real server but misbehave on purpose, the way a
network does: a response lost after the server acted on it, a 503, a stream cut mid-way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import httpx

Rule = Callable[[httpx.Request], bool]


@dataclass
class Faults:
    lose_response: Rule = lambda request: False  # the server handles it, the client never hears back
    answer_503: Rule = lambda request: False  # answered 503 (Retry-After: 0) without reaching the server
    cut_stream_after_events: Callable[[httpx.Request], int | None] = lambda request: None
    seen: list[httpx.Request] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [request.url.path for request in self.seen]


BUSY = httpx.Response(503, headers={"Retry-After": "0"}, json={"detail": "busy"})


class _CutStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, events: int) -> None:
        self.inner, self.events = inner, events

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self.inner:
            yield chunk
            seen += chunk.count(b"event: message.created")
            if seen >= self.events:
                raise httpx.ReadError("connection reset by peer")

    def close(self) -> None:
        self.inner.close()


class _AsyncCutStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, events: int) -> None:
        self.inner, self.events = inner, events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.inner:
            yield chunk
            seen += chunk.count(b"event: message.created")
            if seen >= self.events:
                raise httpx.ReadError("connection reset by peer")

    async def aclose(self) -> None:
        await self.inner.aclose()


class FlakyTransport(httpx.BaseTransport):
    def __init__(self, faults: Faults) -> None:
        self.faults, self.inner = faults, httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.faults.seen.append(request)
        if self.faults.answer_503(request):
            return BUSY
        response = self.inner.handle_request(request)
        if self.faults.lose_response(request):
            response.read()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        events = self.faults.cut_stream_after_events(request)
        if events is not None:
            assert isinstance(response.stream, httpx.SyncByteStream)
            return httpx.Response(
                response.status_code, headers=response.headers, stream=_CutStream(response.stream, events)
            )
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncFlakyTransport(httpx.AsyncBaseTransport):
    def __init__(self, faults: Faults) -> None:
        self.faults, self.inner = faults, httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.faults.seen.append(request)
        if self.faults.answer_503(request):
            return BUSY
        response = await self.inner.handle_async_request(request)
        if self.faults.lose_response(request):
            await response.aread()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        events = self.faults.cut_stream_after_events(request)
        if events is not None:
            assert isinstance(response.stream, httpx.AsyncByteStream)
            stream = _AsyncCutStream(response.stream, events)
            return httpx.Response(response.status_code, headers=response.headers, stream=stream)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def once(rule: Rule) -> Rule:
    """The rule, for the first matching request only."""
    fired = False

    def check(request: httpx.Request) -> bool:
        nonlocal fired
        if not fired and rule(request):
            fired = True
            return True
        return False

    return check
