"""Issue 19, rows 7 and 17: exports read pages bounded in bytes (slow readers hold little),
a failure mid-stream ends the body with an error the client can see (NDJSON line, JSON field,
SSE event) instead of a cut body, and a client that goes away costs one log line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pymongo.errors import ExecutionTimeout

from app.chat import history, repository
from app.core.config import Settings
from app.main import create_app
from tests.bounds import measured
from tests.conftest import StartApp
from tests.events.conftest import serve
from tests.factories import TestUser, make_session, make_user
from tests.stress import scaled

READERS = scaled(3, 5)
MESSAGES = scaled(80, 500)  # the first page holds at most 57 (8 MiB at the largest message size)
CONTENT = 30_000  # characters of 3 bytes in UTF-8: 90 KB a message


def _fail_after(monkeypatch: pytest.MonkeyPatch, calls: int) -> None:
    """The message page reads succeed `calls` times, then time out (as under load)."""
    real = repository.messages_in_seq_range
    made = 0

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal made
        made += 1
        if made > calls:
            raise ExecutionTimeout("operation exceeded time limit")
        return await real(*args, **kwargs)

    monkeypatch.setattr(repository, "messages_in_seq_range", flaky)


def _count_pages(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size (in messages asked for) of each page read from now on, once read."""
    real = repository.messages_in_seq_range
    pages: list[int] = []

    async def counted(db: Any, session_id: Any, first: int, last: int, *args: Any) -> Any:
        documents = await real(db, session_id, first, last, *args)
        pages.append(last - first + 1)
        return documents

    monkeypatch.setattr(repository, "messages_in_seq_range", counted)
    return pages


async def _chat(client: AsyncClient, user: TestUser, title: str) -> dict[str, Any]:
    session = await make_session(client, user, title)
    path = f"/chat/sessions/{session['_id']}/messages"
    assert (await client.post(path, json={"content": f"in {title}"}, headers=user.headers)).status_code == 201
    return session


async def test_a_failure_mid_export_ends_with_an_error_the_client_sees(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load exports ended mid-body ("incomplete chunked read")."""
    user = await make_user(client)
    first = await _chat(client, user, "one")
    await _chat(client, user, "two")
    _fail_after(monkeypatch, 1)
    lines = [json.loads(line) for line in (await client.get("/chat/export", headers=user.headers)).text.splitlines()]
    assert [line["type"] for line in lines] == ["export", "session", "message", "session", "error"]
    assert "incomplete" in lines[-1]["detail"]
    _fail_after(monkeypatch, 0)
    one = await client.get(f"/chat/sessions/{first['_id']}/export", headers=user.headers)
    document = one.json()  # still JSON: the error closes it
    assert document["messages"] == [] and "incomplete" in document["error"]["detail"]
    markdown = await client.get(f"/chat/sessions/{first['_id']}/export?format=md", headers=user.headers)
    assert markdown.text.rstrip().endswith("incomplete; try again**")


async def test_an_export_holds_its_slot_until_its_body_ends(
    start_app: StartApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-user concurrent exports are bounded (HEAVY_REQUESTS_PER_USER) for as long as they stream."""
    server = await start_app(heavy_requests_per_user=1)
    user = await make_user(server)
    await _chat(server, user, "held")
    reading, release = asyncio.Event(), asyncio.Event()
    real = repository.messages_in_seq_range

    async def slow(*args: Any, **kwargs: Any) -> Any:
        reading.set()
        await release.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(repository, "messages_in_seq_range", slow)
    first = asyncio.create_task(server.get("/chat/export", headers=user.headers))
    await asyncio.wait_for(reading.wait(), 10)  # its response has started; its body is being read
    second = await asyncio.wait_for(server.get("/chat/export", headers=user.headers), 10)
    assert second.status_code == 429 and "HEAVY_REQUESTS_PER_USER" in second.json()["detail"]
    release.set()
    assert (await asyncio.wait_for(first, 10)).status_code == 200
    assert (await server.get("/chat/export", headers=user.headers)).status_code == 200


async def test_a_session_stream_replay_that_times_out_sends_an_error_event(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay died on an unhandled ExecutionTimeout."""
    user = await make_user(client)
    session = await _chat(client, user, "replayed")
    _fail_after(monkeypatch, 0)
    path = f"/chat/sessions/{session['_id']}/events"
    response = await asyncio.wait_for(client.get(path, params={"after_seq": 0}, headers=user.headers), 10)
    assert response.status_code == 200
    assert "event: error" in response.text and "Last-Event-ID" in response.text


async def _big_history(http: AsyncClient) -> TestUser:
    """One session of MESSAGES messages of CONTENT characters, imported in one request."""
    user = await make_user(http)
    lines = [{"type": "export", "format": "chat-export", "version": 1}, {"type": "session", "session": {"_id": "s"}}]
    lines += [
        {"type": "message", "message": {"_id": f"m{n}", "role": "user", "content": f"{n:05d}" + "€" * CONTENT}}
        for n in range(MESSAGES)
    ]
    body = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode()
    headers = {**user.headers, "Content-Type": "application/x-ndjson"}
    imported = await http.post("/chat/import", content=body, headers=headers, timeout=120)
    assert imported.json()["messages"]["created"] == MESSAGES, imported.text
    return user


async def _first_chunk(stack: AsyncExitStack, base_url: str, user: TestUser) -> httpx.Response:
    http = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=30))
    response = await stack.enter_async_context(http.stream("GET", "/chat/export", headers=user.headers))
    assert response.status_code == 200
    chunks: AsyncIterator[bytes] = response.aiter_raw()
    await chunks.__anext__()
    return response


@pytest.mark.stress
async def test_slow_export_readers_hold_a_bounded_page_each(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five slow readers took +392 MB (a page was 500 messages, whatever their size); and one
    that left logged ~238 "socket.send() raised exception" lines."""
    app: FastAPI = create_app(settings.model_copy(update={"heavy_requests_per_user": READERS}))
    async with app.router.lifespan_context(app), serve(app) as base_url, AsyncClient(base_url=base_url) as http:
        user = await _big_history(http)
        pages = _count_pages(monkeypatch)
        with measured() as cost:
            async with AsyncExitStack() as readers:
                for _ in range(READERS):
                    await _first_chunk(readers, base_url, user)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 30
                while len(pages) < READERS and loop.time() < deadline:  # each export has read a page
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)
        assert len(pages) >= READERS, "the exports read no page (in 30 s)"
        assert max(pages) * history.MESSAGE_MAX_BYTES <= history.PAGE_BYTES
        assert cost.growth_mb < 15 * READERS, cost  # a page of 57 messages of 90 KB, and its JSON
        caplog.clear()
        with caplog.at_level(logging.INFO):
            async with AsyncExitStack() as leaving:
                await _first_chunk(leaving, base_url, user)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not [r for r in caplog.records if "client disconnected" in r.getMessage()]:
                assert loop.time() < deadline, "no log line for the client that left"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
        messages = [record.getMessage() for record in caplog.records]
        assert sum("client disconnected" in m for m in messages) == 1
        assert sum("socket.send() raised exception" in m for m in messages) <= 1, messages
