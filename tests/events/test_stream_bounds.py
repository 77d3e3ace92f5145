"""Issue 19, rows 4, 6, 8 and 9: event streams are bounded per process (and the health checks
still answer), the replay buffer is bounded in bytes, a stream ends when its API key
expires, and a Last-Event-ID that is not an ASCII number is a 400."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from bson import ObjectId
from fastapi import FastAPI
from httpx import AsyncClient
from pymongo.asynchronous.database import AsyncDatabase

from app.core.changes import RESET, Change, ChangeHub
from app.core.config import Settings
from app.core.db import API_KEYS, Document
from app.core.types import utc_now
from app.events import router as events_router
from app.main import create_app
from tests.bounds import measured
from tests.events.conftest import serve
from tests.events.sse import open_stream
from tests.factories import make_session, make_user


async def test_streams_past_the_process_bound_are_503_and_health_still_answers(settings: Settings) -> None:
    """One account held 1,999 streams and /healthz, /readyz and everyone's requests were 503."""
    app: FastAPI = create_app(settings.model_copy(update={"event_streams_max": 2}))
    async with app.router.lifespan_context(app), serve(app) as base_url, AsyncClient(base_url=base_url) as http:
        first, second, third = [await make_user(http) for _ in range(3)]
        async with (
            open_stream(base_url, "/chat/events", first.headers),
            open_stream(base_url, "/chat/events", second.headers),
        ):
            refused = await http.get("/chat/events", headers=third.headers)
            assert refused.status_code == 503 and refused.headers["retry-after"]
            assert "EVENT_STREAMS_MAX" in refused.json()["detail"]
            for path in ("/healthz", "/readyz"):
                assert (await http.get(path)).status_code == 200
            assert (await make_session(http, third))["title"]
        async with open_stream(base_url, "/chat/events", third.headers):  # places are given back
            pass


def _change(number: int, content: str) -> Change:
    document = {"_id": ObjectId(), "session_id": ObjectId(), "seq": number, "content": content}
    return Change(f"token-{number}", "messages", "insert", document, "owner")


def test_the_replay_buffer_is_bounded_in_bytes_and_replay_past_it_resets() -> None:
    """5,200 posts of 144 KB took the process from 96 MB to 2.7 GB (the buffer held 10,000)."""
    hub = ChangeHub(buffer_size=10_000, buffer_bytes=4 * 1024 * 1024)
    with measured() as cost:
        for number in range(1000):
            hub.publish(_change(number, chr(0x61 + number % 26) * 144_000))
    assert hub.buffered_bytes <= 4 * 1024 * 1024
    assert cost.growth_mb < 40, cost  # 144 MB published
    assert hub.subscribe("owner", after_token="token-0").queue.get_nowait() is RESET
    recent = hub.subscribe("owner", after_token="token-997")
    assert [recent.queue.get_nowait().token for _ in range(2)] == ["token-998", "token-999"]  # type: ignore[union-attr]


async def test_an_event_stream_ends_when_its_api_key_expires(
    app: FastAPI, client: AsyncClient, db: AsyncDatabase[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_router, "AUTH_CHECK_SECONDS", 0.2)
    user = await make_user(client)
    body = {"name": "watcher", "scopes": ["read"], "current_password": user.password}
    created = (await client.post("/auths/api-keys", json=body, headers=user.headers)).json()
    expires_at = utc_now() + timedelta(seconds=2)
    await db[API_KEYS].update_one({"_id": ObjectId(created["_id"])}, {"$set": {"expires_at": expires_at}})
    async with (
        serve(app) as base_url,
        open_stream(base_url, "/chat/events", {"Authorization": f"Bearer {created['key']}"}) as stream,
    ):
        started = time.monotonic()
        while await stream.next(timeout=10) is not None:
            pass  # keepalives, until the stream ends
        assert utc_now() >= expires_at
        assert time.monotonic() - started < 8, "the stream outlived its key"


async def test_a_last_event_id_of_non_ascii_digits_is_a_400(client: AsyncClient) -> None:
    user = await make_user(client)
    session = await make_session(client, user)
    path = f"/chat/sessions/{session['_id']}/events"
    for value in (b"\xb2", "١٢".encode()):  # '²' and Arabic-Indic digits: str.isdigit() says yes
        response = await asyncio.wait_for(client.get(path, headers={**user.headers, "Last-Event-ID": value}), 10)
        assert response.status_code == 400, response.text
        assert "Last-Event-ID" in response.json()["detail"]


def test_streams_never_take_more_than_half_the_connections(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"max_connections": 60, "event_streams_max": 1000}))
    assert app.state.change_hub.max_streams == 30
