"""A client that stops reading: it is reset and closed, and what it held is freed, instead of
the server queueing every change for it without bound."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from fastapi import FastAPI

from app.core.changes import ChangeHub
from app.core.config import Settings
from app.main import create_app
from tests.conftest import drop_test_database
from tests.events.conftest import serve
from tests.factories import make_session, make_user

QUEUE_SIZE = 10
BIG = "x" * 8000


async def test_a_reader_that_stops_reading_gets_reset_and_is_unsubscribed(settings: Settings, tmp_path: Path) -> None:
    app: FastAPI = create_app(
        settings.model_copy(update={"event_queue_size": QUEUE_SIZE, "max_body_bytes": 2 * 1024 * 1024})
    )
    hub: ChangeHub = app.state.change_hub
    async with app.router.lifespan_context(app), serve(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
            user = await make_user(api)
            session = await make_session(api, user)
            reader, writer = await asyncio.open_connection("127.0.0.1", int(base_url.rsplit(":", 1)[1]))
            writer.write(f"GET /chat/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {user.token}\r\n\r\n".encode())
            await writer.drain()
            assert b"retry:" in await reader.readuntil(b"retry: 3000")
            assert hub.subscriber_count == 1
            batch = {"messages": [{"content": BIG}] * 100}
            for _ in range(5):  # 4 MB of events, far more than the socket buffers hold
                posted = await api.post(
                    f"/chat/sessions/{session['_id']}/messages/batch", json=batch, headers=user.headers
                )
                assert posted.status_code == 201
            for _ in range(100):
                if hub.subscriber_count == 0:
                    break
                await asyncio.sleep(0.05)
            assert hub.subscriber_count == 0, "the slow reader is no longer fed"
            rest = await asyncio.wait_for(reader.read(), 20)  # read on, to the end of the stream
            assert b"event: reset" in rest
            assert rest.endswith(b"0\r\n\r\n"), "and the stream was closed after it"
            writer.close()
        await drop_test_database(app.state.database.db)
