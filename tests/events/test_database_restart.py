"""A change stream under a database restart: it resumes from its last token, or when that is
impossible, every connected client gets `reset`. Never a silent gap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
from fastapi import FastAPI

from app.main import create_app
from tests.core.test_faults import RestartableDatabase, _settings
from tests.events.conftest import serve
from tests.events.sse import open_stream
from tests.factories import make_session, make_user

RECOVERY_SECONDS = 20.0


@pytest_asyncio.fixture
async def restart_app(restartable: RestartableDatabase, tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(_settings(restartable.current.uri, tmp_path))
    async with application.router.lifespan_context(application):
        yield application


async def _post_until_accepted(api: httpx.AsyncClient, path: str, headers: dict[str, str]) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECOVERY_SECONDS
    while loop.time() < deadline:
        response = await api.post(path, json={"content": "after the restart"}, headers=headers)
        if response.status_code == 201:
            body: dict[str, object] = response.json()
            return body
        await asyncio.sleep(0.3)
    raise AssertionError("the database did not come back")


async def test_a_stream_recovers_or_resets_when_the_database_restarts(
    restartable: RestartableDatabase, restart_app: FastAPI
) -> None:
    async with serve(restart_app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as api:
        user = await make_user(api)
        session = await make_session(api, user)
        async with open_stream(base_url, "/chat/events", user.headers) as stream:
            await restartable.stop()
            await restartable.start()
            posted = await _post_until_accepted(api, f"/chat/sessions/{session['_id']}/messages", user.headers)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + RECOVERY_SECONDS
            outcome = None
            while outcome is None and (left := deadline - loop.time()) > 0:
                event = await stream.next(timeout=left)
                assert event is not None, "the stream ended or went quiet without a reset"
                if event.event == "reset" or (event.event == "message.created" and event.json == posted):
                    outcome = event.event
            assert outcome in {"reset", "message.created"}
