"""Every tab sees a reply grow: `message.updated` on the session's event stream, and a client
that connects mid-reply gets the stored partial text at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI

from tests.assistant.fake_upstream import FakeUpstream, Script
from tests.events.conftest import serve
from tests.events.sse import open_stream
from tests.factories import make_session, make_user


@pytest_asyncio.fixture
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    async with serve(app) as url:
        yield url


async def test_a_watcher_sees_the_reply_grow_and_a_late_one_gets_the_partial_text(
    base_url: str, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    upstream.default = Script(pieces=[f"w{i} " for i in range(40)], delay=0.05)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
        user = await make_user(api)
        session = await make_session(api, user)
        events_path = f"/chat/sessions/{session['_id']}/events"
        async with open_stream(base_url, events_path, user.headers) as watcher:
            asked = await api.post(
                f"/chat/sessions/{session['_id']}/messages",
                json={"content": "count", "reply": {"agent": "helper"}},
                headers=user.headers,
            )
            reply_id = asked.json()["reply"]["_id"]
            created = [(await watcher.until("message.created", 5)).json for _ in range(2)]
            assert [m["seq"] for m in created] == [1, 2]
            growing = (await watcher.until("message.updated", 10)).json
            assert growing["_id"] == reply_id and growing["status"] == "streaming" and growing["content"]

            async with open_stream(base_url, events_path, user.headers, {"after_seq": 2}) as late:
                first = await late.until("message.updated", 5)
                assert first.json["_id"] == reply_id and first.json["content"].startswith("w0 ")

            updates = []
            while not updates or updates[-1]["status"] == "streaming":
                updates.append((await watcher.until("message.updated", 10)).json)
            final = updates[-1]
            assert final["status"] == "complete" and final["content"] == "".join(f"w{i} " for i in range(40))
            # at most one progress write per 250 ms: 40 pieces over ~2 s are not 40 writes
            assert len(updates) < 30
