"""Faults: the database going away and coming back under a running app, shutting down while it
is away, and clients that stall mid-body. Each test names the failure it guards against."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.core.config import Settings
from app.core.embedded import EmbeddedDatabase
from app.main import create_app
from tests.conftest import TEST_JWT_SECRET
from tests.factories import make_session, make_user
from tests.server_process import ServerProcess, free_port

UNAVAILABLE_WITHIN_SECONDS = 3.0
SHUTDOWN_WITHIN_SECONDS = 5.0
RECOVERY_WITHIN_SECONDS = 15.0
FAST_SECONDS = 0.5


class RestartableDatabase:
    """A dedicated embedded database on a fixed port, so it comes back where the app expects it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.current = EmbeddedDatabase(data_dir, port=self.port)

    async def start(self) -> str:
        self.current = EmbeddedDatabase(self.data_dir, port=self.port)
        return await self.current.start()

    async def stop(self) -> None:
        await self.current.stop()


@pytest_asyncio.fixture
async def restartable(tmp_path: Path) -> AsyncIterator[RestartableDatabase]:
    database = RestartableDatabase(tmp_path / "db")
    await database.start()
    yield database
    await database.stop()


def _settings(uri: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        mongodb_uri=uri,
        mongodb_db="faults",
        jwt_secret=TEST_JWT_SECRET,
        data_dir=tmp_path / "data",
    )


@pytest_asyncio.fixture
async def fault_app(restartable: RestartableDatabase, tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(_settings(restartable.current.uri, tmp_path))
    async with application.router.lifespan_context(application):
        yield application


async def _timed(
    request: asyncio.Future[httpx.Response] | asyncio.Task[httpx.Response],
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def test_database_down_answers_503_fast_and_recovers_without_restart(
    fault_app: FastAPI, restartable: RestartableDatabase
) -> None:
    """Guards: requests hanging for timeoutMS x 4 (the driver ignores serverSelectionTimeoutMS
    once timeoutMS is set), and post_message retrying its transaction for 120 s."""
    async with AsyncClient(transport=ASGITransport(app=fault_app), base_url="http://testserver") as client:
        user = await make_user(client)
        session_id = (await make_session(client, user))["_id"]
        messages = f"/chat/sessions/{session_id}/messages"
        calls = {
            "me": lambda: client.get("/auths/me", headers=user.headers),
            "list_sessions": lambda: client.get("/chat/sessions", headers=user.headers),
            "get_session": lambda: client.get(f"/chat/sessions/{session_id}", headers=user.headers),
            "list_messages": lambda: client.get(messages, headers=user.headers),
            "post_message": lambda: client.post(messages, json={"content": "hi"}, headers=user.headers),
            "create_session": lambda: client.post("/chat/sessions", json={"title": "t"}, headers=user.headers),
        }

        await restartable.stop()

        tasks = {name: asyncio.create_task(_timed(asyncio.ensure_future(call()))) for name, call in calls.items()}
        ready = asyncio.create_task(_timed(asyncio.ensure_future(client.get("/readyz"))))
        await asyncio.sleep(0.2)
        health, health_seconds = await _timed(asyncio.ensure_future(client.get("/healthz")))
        assert health.status_code == 200
        assert health_seconds < FAST_SECONDS, "requests waiting on the database stalled /healthz"

        for name, task in tasks.items():
            response, seconds = await task
            assert response.status_code == 503, (name, response.status_code, response.text)
            assert response.headers["content-type"] == "application/json"
            assert response.json()["detail"], name
            assert seconds < UNAVAILABLE_WITHIN_SECONDS, (name, seconds)
        ready_response, ready_seconds = await ready
        assert ready_response.status_code == 503
        assert ready_seconds < UNAVAILABLE_WITHIN_SECONDS

        await restartable.start()
        deadline = time.monotonic() + RECOVERY_WITHIN_SECONDS
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "the app did not reconnect to the restarted database"
            await asyncio.sleep(0.2)
        posted = await client.post(messages, json={"content": "after"}, headers=user.headers)
        assert posted.status_code == 201, posted.text
        page = await client.get(messages, headers=user.headers)
        assert page.status_code == 200
        assert [m["content"] for m in page.json()["items"]][-1] == "after"
        # The failed post moved no counter: seq stays dense.
        assert [m["seq"] for m in page.json()["items"]] == list(range(1, len(page.json()["items"]) + 1))


async def test_lifespan_shutdown_with_database_down_is_bounded(
    restartable: RestartableDatabase, tmp_path: Path
) -> None:
    """Guards: closing the client hanging when the database is already gone."""
    application = create_app(_settings(restartable.current.uri, tmp_path))
    async with application.router.lifespan_context(application):
        await restartable.stop()
        started = time.monotonic()
    assert time.monotonic() - started < SHUTDOWN_WITHIN_SECONDS


@pytest.fixture
def server_on_restartable(restartable: RestartableDatabase, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"MONGODB_URI": restartable.current.uri, "JWT_SECRET": TEST_JWT_SECRET, "MONGODB_DB": "faults"}
    server = ServerProcess(tmp_path / "server-data", env=env).start()
    try:
        yield server
    finally:
        server.kill()


async def test_server_sigterm_with_database_down_exits_within_5s(
    server_on_restartable: ServerProcess, restartable: RestartableDatabase
) -> None:
    """Guards: a real server (uvicorn) that never exits because requests or the client wait on a
    database that is gone."""
    await restartable.stop()
    in_flight = threading.Thread(
        target=lambda: httpx.get(f"{server_on_restartable.base_url}/readyz", timeout=10), daemon=True
    )
    in_flight.start()
    await asyncio.sleep(0.3)
    started = time.monotonic()
    exit_code = await asyncio.to_thread(server_on_restartable.stop, SHUTDOWN_WITHIN_SECONDS + 5)
    assert time.monotonic() - started < SHUTDOWN_WITHIN_SECONDS
    assert exit_code in (0, -signal.SIGTERM), server_on_restartable.log_tail()  # uvicorn re-raises SIGTERM


@pytest.fixture
def impatient_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data", env={"BODY_READ_TIMEOUT_SECONDS": "1"}).start()
    try:
        yield server
    finally:
        server.kill()


def _stalled_request(port: int) -> socket.socket:
    """Headers and the start of a body promising more, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    body_start = b'{"username": "slow'
    sock.sendall(
        b"POST /auths/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n" + body_start
    )
    return sock


def _read_reply(sock: socket.socket) -> bytes:
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


def test_stalled_request_bodies_do_not_block_other_requests(impatient_server: ServerProcess) -> None:
    """Guards: slow clients (slowloris bodies) holding the server; each one gets 408 after
    BODY_READ_TIMEOUT_SECONDS while everyone else is served at once."""
    stalled = [_stalled_request(impatient_server.port) for _ in range(20)]
    try:
        with httpx.Client(base_url=impatient_server.base_url, timeout=5) as client:
            for path in ("/healthz", "/readyz", "/healthz"):
                started = time.monotonic()
                assert client.get(path).status_code == 200
                assert time.monotonic() - started < FAST_SECONDS, path
        for sock in stalled:
            reply = _read_reply(sock)
            assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
            assert b"Timed out reading the request body" in reply
    finally:
        for sock in stalled:
            sock.close()
