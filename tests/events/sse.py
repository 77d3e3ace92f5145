"""A small Server-Sent Events reader for tests, over an httpx streaming response."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

CONNECT_TIMEOUT = 5.0


@dataclass
class Event:
    event: str | None = None
    id: str | None = None
    data: str = ""
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class EventReader:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, timeout: float = 2.0, comments: bool = False) -> Event | None:
        """The next event (comment-only blocks skipped unless `comments`); None on a timeout
        or at the end of the stream."""
        try:
            return await asyncio.wait_for(self._next(comments), timeout)
        except (TimeoutError, StopAsyncIteration):
            return None

    async def _next(self, comments: bool) -> Event:
        current = Event()
        data: list[str] = []
        seen = False
        async for line in self._lines:
            if line == "":
                if not seen:
                    continue
                current.data = "\n".join(data)
                if current.event is None and not data and current.retry is None and not comments:
                    current, data, seen = Event(), [], False
                    continue
                return current
            seen = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                current.comments.append(value)
            elif name == "event":
                current.event = value
            elif name == "id":
                current.id = value
            elif name == "data":
                data.append(value)
            elif name == "retry":
                current.retry = int(value)
        raise StopAsyncIteration

    async def collect(self, seconds: float) -> list[Event]:
        """Every event that arrives within `seconds`."""
        events: list[Event] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            event = await self.next(timeout=left)
            if event is None:
                break
            events.append(event)
        return events

    async def until(self, name: str, timeout: float = 2.0) -> Event:
        """The next event called `name`, skipping others; fails after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            event = await self.next(timeout=left)
            if event is None:
                break
            if event.event == name:
                return event
        raise AssertionError(f"no {name} event within {timeout} s")


@asynccontextmanager
async def open_stream(
    base_url: str, path: str, headers: dict[str, str], params: dict[str, Any] | None = None
) -> AsyncIterator[EventReader]:
    """Connect and wait for the first block (the `retry:` one): subscribed from then on."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30, connect=CONNECT_TIMEOUT)) as http,
        http.stream("GET", path, headers=headers, params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(response)
        first = await reader.next(timeout=CONNECT_TIMEOUT)
        assert first is not None and first.retry is not None, "the first event carries retry:"
        yield reader
