"""A recorded completion's reply is the assistant's reply (issue 17: "the reply as it streams,
the same stored, watchable, resumable message"): stored `streaming` from the start and seen
growing, ended `complete`; a client that drops the stream leaves it `cancelled` with what the
model had said, never `streaming` forever; a retry with the same Idempotency-Key neither calls
the upstream again nor stores the reply twice. Streams are read over real HTTP (ASGITransport
buffers them)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import AsyncClient
from openai import AsyncOpenAI

from app.chat import repository as chat_repository
from app.chat import service
from app.core.db import GENERATIONS
from app.core.errors import DatabaseUnavailable
from tests.assistant.fake_upstream import FakeUpstream, Script
from tests.events.conftest import serve
from tests.events.sse import open_stream
from tests.factories import TestUser
from tests.openai_compat.gateway.test_chat_completions import session_messages

WORDS = [f"w{i} " for i in range(60)]
DEADLINE = 30.0


@pytest_asyncio.fixture
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    async with serve(app) as url:
        yield url


async def _reply_when(
    api: AsyncClient, user: TestUser, name: str, ready: Any, deadline: float = DEADLINE
) -> dict[str, Any]:
    """The session's last message once `ready(message)` holds (polled)."""
    end = time.monotonic() + deadline
    while True:
        found = (await api.get("/chat/sessions", params={"name": name}, headers=user.headers)).json()["items"]
        if found:
            stored = await session_messages(api, user, name)
            if ready(stored[-1]):
                return stored[-1]
        assert time.monotonic() < end, "the reply did not reach the expected state"
        await asyncio.sleep(0.05)


def _completion(name: str) -> dict[str, Any]:
    return {"model": "helper", "messages": [{"role": "user", "content": "count"}], "stream": True, "user": name}


async def test_a_streamed_completion_is_stored_streaming_watched_growing_then_complete(
    base_url: str, user: TestUser, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    upstream.default = Script(pieces=WORDS, delay=0.05)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
        async with api.stream("POST", "/v1/chat/completions", json=_completion("live"), headers=user.headers) as s:
            assert s.status_code == 200
            growing = await _reply_when(api, user, "live", lambda m: m["role"] == "assistant" and m["content"])
            assert growing["status"] == "streaming" and "".join(WORDS).startswith(growing["content"])
            events = f"/chat/sessions/{growing['session_id']}/events"
            async with open_stream(base_url, events, user.headers) as watcher:
                updated = (await watcher.until("message.updated", 10)).json
                assert updated["_id"] == growing["_id"] and updated["status"] == "streaming"
            chunks = [json.loads(line[6:]) async for line in s.aiter_lines() if line.startswith("data: {")]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert text == "".join(WORDS)  # the client still gets every chunk
        final = await _reply_when(api, user, "live", lambda m: m["status"] != "streaming")
    assert (final["status"], final["content"], final["metadata"]["finish_reason"]) == ("complete", text, "stop")


async def test_a_dropped_stream_ends_the_reply_cancelled_keeping_what_was_said(
    base_url: str, user: TestUser, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    upstream.default = Script(pieces=WORDS * 5, delay=0.05)  # some 15 s unless stopped
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
        async with api.stream("POST", "/v1/chat/completions", json=_completion("dropped"), headers=user.headers) as s:
            received = 0
            async for line in s.aiter_lines():
                received += line.startswith("data: {")
                if received == 5:
                    break  # the client goes away mid-reply
        ended = await _reply_when(api, user, "dropped", lambda m: m["status"] != "streaming", deadline=10)
    assert ended["status"] == "cancelled"
    assert ended["content"] and ("".join(WORDS * 5)).startswith(ended["content"])
    assert len(ended["content"]) < len("".join(WORDS * 5))


async def test_a_retried_completion_with_the_same_idempotency_key_runs_once_and_is_stored_once(
    sdk: AsyncOpenAI, client: AsyncClient, user: TestUser, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    hi: Any = [{"role": "user", "content": "Hi"}]
    once = {"Idempotency-Key": "whole-1"}
    first = await sdk.chat.completions.create(model="helper", messages=hi, user="retried", extra_headers=once)
    again = await sdk.chat.completions.with_raw_response.create(
        model="helper", messages=hi, user="retried", extra_headers=once
    )
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.parse().choices[0].message.content == first.choices[0].message.content == "Hello, world!"

    streamed = {"Idempotency-Key": "stream-1"}
    texts = []
    for _ in range(2):
        chunks = await sdk.chat.completions.create(
            model="helper", messages=hi, user="retried-stream", stream=True, extra_headers=streamed
        )
        texts.append("".join([c.choices[0].delta.content or "" async for c in chunks if c.choices]))
    assert texts == ["Hello, world!", "Hello, world!"]

    unnamed: Any = [{"role": "user", "content": "Unnamed"}]
    for _ in range(2):
        await sdk.chat.completions.create(model="helper", messages=unnamed, extra_headers={"Idempotency-Key": "u-1"})
    sessions = (await client.get("/chat/sessions", headers=user.headers)).json()["items"]
    assert [s["message_count"] for s in sessions if s["title"] == "Unnamed"] == [2]  # no empty second session

    assert len(upstream.requests) == 3  # one per key
    for name in ("retried", "retried-stream"):
        stored = await session_messages(client, user, name)
        assert [(m["role"], m["content"], m.get("status")) for m in stored] == [
            ("user", "Hi", None),
            ("assistant", "Hello, world!", "complete"),
        ]


async def test_a_failed_reply_stays_failed_and_the_next_turns_pass_over_it(
    sdk: AsyncOpenAI, client: AsyncClient, user: TestUser, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    upstream.default = Script(status=500)
    hi: Any = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.InternalServerError):
        await sdk.chat.completions.create(model="helper", messages=hi, user="flaky")
    upstream.default = Script()
    await sdk.chat.completions.create(model="helper", messages=hi, user="flaky")  # the client tries again
    more: Any = [*hi, {"role": "assistant", "content": "Hello, world!"}, {"role": "user", "content": "More"}]
    await sdk.chat.completions.create(model="helper", messages=more, user="flaky")
    stored = await session_messages(client, user, "flaky")
    assert [(m["role"], m["content"], m.get("status")) for m in stored] == [
        ("user", "Hi", None),
        ("assistant", "", "failed"),
        ("assistant", "Hello, world!", "complete"),
        ("user", "More", None),
        ("assistant", "Hello, world!", "complete"),
    ]
    assert stored[1]["metadata"]["error"]["status"] == 500


async def test_an_upstream_cut_mid_stream_ends_the_reply_failed_keeping_its_text(
    sdk: AsyncOpenAI, client: AsyncClient, user: TestUser, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    upstream.default = Script(cut_after=2)
    hi: Any = [{"role": "user", "content": "Hi"}]
    chunks = await sdk.chat.completions.create(model="helper", messages=hi, user="cut", stream=True)
    with pytest.raises(openai.APIError):
        [c async for c in chunks]
    reply = (await session_messages(client, user, "cut"))[-1]
    assert (reply["status"], reply["content"], reply["metadata"]["error"]["reason"]) == (
        "failed",
        "Hello, ",
        "connection",
    )


def _hold_the_store(monkeypatch: pytest.MonkeyPatch, then: Any) -> asyncio.Event:
    """The reply's transaction waits, before it inserts the messages and the reply, until the
    returned event is set (the client has the first text), then does `then(insert)`."""
    client_has_text = asyncio.Event()
    insert = chat_repository.insert_messages

    async def held(*args: Any, **kwargs: Any) -> Any:
        await asyncio.wait_for(client_has_text.wait(), 10)
        return await then(insert)(*args, **kwargs)

    monkeypatch.setattr(chat_repository, "insert_messages", held)
    return client_has_text


async def _events(stream: httpx.Response, client_has_text: asyncio.Event) -> list[Any]:
    """The stream's events (its chunks and errors decoded, "[DONE]" as it is)."""
    events: list[Any] = []
    async for line in stream.aiter_lines():
        if line == "data: [DONE]":
            events.append("[DONE]")
        elif line.startswith("data: "):
            events.append(json.loads(line[6:]))
            if any(choice["delta"].get("content") for choice in events[-1].get("choices", [])):
                client_has_text.set()
    return events


async def test_the_models_chunks_are_passed_on_before_the_reply_is_stored(
    base_url: str, user: TestUser, upstream: FakeUpstream, agent: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first token does not wait for the reply's transaction to commit (issue 17: the
    gateway's added latency): here the transaction waits for the client to have it."""
    upstream.default = Script(pieces=["one ", "two"])
    client_has_text = _hold_the_store(monkeypatch, lambda insert: insert)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
        async with api.stream("POST", "/v1/chat/completions", json=_completion("early"), headers=user.headers) as s:
            events = await _events(s, client_has_text)
        final = await _reply_when(api, user, "early", lambda m: m["status"] != "streaming")
    assert events[-1] == "[DONE]"
    assert (final["status"], final["content"]) == ("complete", "one two")


async def test_a_reply_that_cannot_be_stored_after_its_first_chunks_ends_the_stream_with_the_error(
    base_url: str, user: TestUser, upstream: FakeUpstream, agent: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.default = Script(pieces=["one ", "two"])

    def unavailable(_insert: Any) -> Any:
        async def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise DatabaseUnavailable()

        return fail

    client_has_text = _hold_the_store(monkeypatch, unavailable)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
        async with api.stream("POST", "/v1/chat/completions", json=_completion("lost"), headers=user.headers) as s:
            events = await _events(s, client_has_text)
        assert events[0]["choices"] and events[-1]["error"]["message"] == DatabaseUnavailable.detail
        assert "[DONE]" not in events
        assert await session_messages(api, user, "lost") == []  # neither the question nor a reply
        monkeypatch.undo()
        whole = _completion("lost") | {"stream": False}
        again = await api.post("/v1/chat/completions", json=whole, headers=user.headers)
        assert again.status_code == 200, again.text  # nothing left holding the session


async def test_a_session_deleted_as_a_completion_starts_answers_404_and_holds_nothing(
    base_url: str,
    app: FastAPI,
    user: TestUser,
    upstream: FakeUpstream,
    agent: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gateway records the reply's generation (and sends the upstream call) before its
    transaction reads the session it looked up by name: a session deleted in between is still
    a 404 when the model has not answered yet, with no reply left holding a slot, and the name
    is free for the next call. (Had the model's first chunks come first, the stream would end
    with that error instead, as any reply that cannot be stored.)"""
    database = app.state.database
    whole = _completion("gone") | {"stream": False}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
        assert (await api.post("/v1/chat/completions", json=whole, headers=user.headers)).status_code == 200
        found = service.named_session

        async def found_then_deleted(*args: Any) -> Any:
            session = await found(*args)
            await service.delete_session(database, str(session["_id"]), session["user_id"])
            return session

        monkeypatch.setattr(service, "named_session", found_then_deleted)
        upstream.default = Script(first_delay=5.0)
        async with api.stream("POST", "/v1/chat/completions", json=_completion("gone"), headers=user.headers) as s:
            assert s.status_code == 404
            assert json.loads(await s.aread())["error"]["message"] == "Chat session not found"
        assert await database.db[GENERATIONS].count_documents({}) == 0
        monkeypatch.undo()
        upstream.default = Script()
        again = await api.post("/v1/chat/completions", json=whole, headers=user.headers)
        assert again.status_code == 200, again.text
        assert [m["role"] for m in await session_messages(api, user, "gone")] == ["user", "assistant"]
