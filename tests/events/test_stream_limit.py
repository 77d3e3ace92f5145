"""A user holds at most EVENT_STREAMS_PER_USER event streams per server: one account cannot
take every connection slot of the server (and the memory of their queues) from everyone else."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI
from httpx import AsyncClient

from app.core.config import Settings
from app.main import create_app
from tests.events.conftest import serve
from tests.events.sse import open_stream
from tests.factories import make_session, make_user

LIMIT = 3


async def test_streams_past_the_limit_are_429_and_a_closed_one_frees_its_place(settings: Settings) -> None:
    app: FastAPI = create_app(settings.model_copy(update={"event_streams_per_user": LIMIT}))
    async with app.router.lifespan_context(app), serve(app) as base_url, AsyncClient(base_url=base_url) as http:
        hog, other = await make_user(http), await make_user(http)
        session = await make_session(http, hog)
        paths = ["/chat/events", f"/chat/sessions/{session['_id']}/events", "/chat/events"]
        async with contextlib.AsyncExitStack() as streams:
            for path in paths:
                await streams.enter_async_context(open_stream(base_url, path, hog.headers))
            for path in ("/chat/events", f"/chat/sessions/{session['_id']}/events"):
                refused = await http.get(path, headers=hog.headers)
                assert refused.status_code == 429 and refused.headers["retry-after"]
                assert "EVENT_STREAMS_PER_USER" in refused.json()["detail"]
            async with open_stream(base_url, "/chat/events", other.headers):  # another user is unaffected
                pass
        for _ in range(50):  # the streams are dropped as their connections close
            async with http.stream("GET", "/chat/events", headers=hog.headers) as probe:
                if probe.status_code == 200:
                    break
            await asyncio.sleep(0.05)
        async with open_stream(base_url, "/chat/events", hog.headers) as again:
            await http.post(f"/chat/sessions/{session['_id']}/messages", json={"content": "back"}, headers=hog.headers)
            assert (await again.until("message.created")).json["content"] == "back"
