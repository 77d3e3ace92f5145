"""On a database without change streams (a standalone server) the events of this process's
own writes still reach its clients, and the start-up says that other instances' are not seen."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from app.core.config import Settings
from app.main import create_app
from tests.events.conftest import serve
from tests.events.sse import open_stream
from tests.factories import make_session, make_user, post_message
from tests.server_process import free_port


@pytest_asyncio.fixture
async def standalone_uri(tmp_path: Path) -> AsyncIterator[str]:
    """SecantusDB advertising itself as a standalone server, as a mongod without --replSet."""
    port = free_port()
    storage = tmp_path / "standalone"
    storage.mkdir()
    command = [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--storage-path", str(storage), "--standalone"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    try:
        for _ in range(200):
            try:
                async with AsyncMongoClient(uri, serverSelectionTimeoutMS=200) as client:
                    await client.admin.command("ping")
                break
            except Exception:
                await asyncio.sleep(0.1)
        yield uri
    finally:
        process.terminate()
        process.wait(15)


async def test_without_change_streams_this_servers_writes_still_reach_its_streams(
    standalone_uri: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings.model_copy(update={"mongodb_uri": SecretStr(standalone_uri)}))
    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app), serve(app) as base_url:
            assert not app.state.database.supports_transactions
            assert any("not those of other instances" in r.getMessage() for r in caplog.records)
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
                user = await make_user(api)
                async with open_stream(base_url, "/chat/events", user.headers) as stream:
                    session = await make_session(api, user)
                    assert (await stream.until("session.created")).json == session
                    message = await post_message(api, user, session["_id"], "local only")
                    assert (await stream.until("message.created")).json == message
                    assert (await stream.until("session.updated")).json["message_count"] == 1
                    path = f"/chat/sessions/{session['_id']}"
                    renamed = await api.patch(path, json={"title": "Renamed"}, headers=user.headers)
                    assert (await stream.until("session.updated")).json == renamed.json()
                    assert (await api.delete(path, headers=user.headers)).status_code == 204
                    assert (await stream.until("session.deleted")).json["_id"] == session["_id"]


async def test_without_change_streams_readyz_says_search_is_not_indexed(
    standalone_uri: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Search is built from the change stream: on a standalone nothing new is indexed, and
    the server says so at start and in /readyz rather than looking merely behind."""
    app = create_app(settings.model_copy(update={"mongodb_uri": SecretStr(standalone_uri)}))
    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app), serve(app) as base_url:
            assert any("not indexed for search" in r.getMessage() for r in caplog.records)
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
                user = await make_user(api)
                session = await make_session(api, user)
                await post_message(api, user, session["_id"], "unindexed words")
                ready = await api.get("/readyz")
                assert ready.status_code == 200
                report = ready.json()["search_index"]
                assert report["available"] is False
                assert report["caught_up_at"] is None
                assert "replica set" in report["detail"]
                found = await api.get("/chat/search", params={"q": "unindexed"}, headers=user.headers)
                assert found.status_code == 200 and found.json()["items"] == []
