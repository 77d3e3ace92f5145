"""/metrics counts the open event streams."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app
from tests.events.conftest import serve
from tests.events.sse import open_stream
from tests.factories import make_user

TOKEN = "metrics-token-for-tests-0123456789"


def _gauge(text: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith("event_stream_clients "))
    return float(line.split()[1])


async def test_the_gauge_follows_open_streams(settings: Settings) -> None:
    app: FastAPI = create_app(settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}))
    scrape = {"Authorization": f"Bearer {TOKEN}"}
    async with app.router.lifespan_context(app), serve(app) as base_url, AsyncClient(base_url=base_url) as http:
        user = await make_user(http)
        assert _gauge((await http.get("/metrics", headers=scrape)).text) == 0
        async with (
            open_stream(base_url, "/chat/events", user.headers),
            open_stream(base_url, "/chat/events", user.headers),
        ):
            assert _gauge((await http.get("/metrics", headers=scrape)).text) == 2
        for _ in range(50):  # the server notices the disconnects at once; give it a turn
            if _gauge((await http.get("/metrics", headers=scrape)).text) == 0:
                break
            await asyncio.sleep(0.05)
        assert _gauge((await http.get("/metrics", headers=scrape)).text) == 0
