"""Several server processes on one database behave as one: a write on A reaches B's streams,
and an event id from A resumes on B (ids are the database's resume tokens)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_JWT_SECRET
from tests.events.sse import open_stream
from tests.factories import make_session, make_user, post_message
from tests.server_process import ServerProcess

DELIVERY_SECONDS = 1.0


@pytest.fixture
def two_servers(tmp_path: Path, mongodb_uri: str) -> Iterator[list[ServerProcess]]:
    env = {"MONGODB_URI": mongodb_uri, "MONGODB_DB": f"test_{uuid.uuid4().hex[:16]}", "JWT_SECRET": TEST_JWT_SECRET}
    servers = [ServerProcess(tmp_path / f"data{i}", env=env).start() for i in range(2)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


async def test_a_message_posted_to_a_arrives_on_b_and_resumes_on_b_after_a(two_servers: list[ServerProcess]) -> None:
    a, b = two_servers
    async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as api:
        user = await make_user(api)
        session = await make_session(api, user)
        session_path = f"/chat/sessions/{session['_id']}/events"
        async with (
            open_stream(b.base_url, "/chat/events", user.headers) as on_b,
            open_stream(b.base_url, session_path, user.headers) as session_on_b,
            open_stream(a.base_url, "/chat/events", user.headers) as on_a,
        ):
            posted = await post_message(api, user, session["_id"], "from A")
            assert (await on_b.until("message.created", DELIVERY_SECONDS)).json == posted
            assert (await session_on_b.until("message.created", DELIVERY_SECONDS)).json == posted
            last_on_a = await on_a.until("message.created", DELIVERY_SECONDS)
        missed = [await post_message(api, user, session["_id"], f"missed {i}") for i in range(3)]
        resume = {**user.headers, "Last-Event-ID": str(last_on_a.id)}
        async with open_stream(b.base_url, "/chat/events", resume) as user_stream:
            user_events = await user_stream.collect(DELIVERY_SECONDS)
        async with open_stream(b.base_url, session_path, {**user.headers, "Last-Event-ID": "1"}) as session_stream:
            session_events = await session_stream.collect(DELIVERY_SECONDS)
    assert [e.json for e in user_events if e.event == "message.created"] == missed
    assert [e.json for e in session_events] == missed
