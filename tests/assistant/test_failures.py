"""A reply never stays `streaming`: upstream errors, stalls and cut connections end it
`failed` with a short reason, and a cancel ends it `cancelled`; the partial text is kept."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any, cast

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.assistant import runner
from app.core.db import Database
from tests.assistant.fake_upstream import FakeUpstream, Script
from tests.assistant.helpers import reply_of, wait_for_reply
from tests.factories import TestUser, make_session, make_user


async def _ask(client: AsyncClient, user: TestUser, content: str = "hi") -> tuple[str, str]:
    session = await make_session(client, user)
    response = await client.post(
        f"/chat/sessions/{session['_id']}/messages",
        json={"content": content, "reply": {"agent": "helper"}},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return session["_id"], response.json()["reply"]["_id"]


async def _wait_for_text(client: AsyncClient, user: TestUser, session_id: str, reply_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        reply = await reply_of(client, user, session_id, reply_id)
        if reply["content"]:
            return reply
        assert time.monotonic() < deadline, "no partial text was stored"
        await asyncio.sleep(0.05)


async def test_a_stall_past_the_timeout_fails_keeping_the_partial_text(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    upstream.default = Script(pieces=["Hello", ", ", "world"], stall_after=2, stall_seconds=20)
    user = await make_user(client)
    session_id, reply_id = await _ask(client, user)
    reply = await wait_for_reply(client, user, session_id, reply_id)
    assert reply["status"] == "failed" and reply["content"] == "Hello, "
    assert reply["metadata"]["error"]["reason"] == "timeout"


async def test_a_connection_cut_mid_stream_fails_keeping_the_partial_text(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    upstream.default = Script(pieces=["one", " two", " three"], cut_after=2)
    user = await make_user(client)
    session_id, reply_id = await _ask(client, user)
    reply = await wait_for_reply(client, user, session_id, reply_id)
    assert reply["status"] == "failed" and reply["content"] == "one two"
    assert reply["metadata"]["error"]["reason"] == "connection"


async def test_upstream_4xx_and_refusal_fail_with_a_short_reason(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    upstream.default = Script(status=400, error_message="x" * 5000)
    user = await make_user(client)
    session_id, reply_id = await _ask(client, user)
    reply = await wait_for_reply(client, user, session_id, reply_id)
    error = reply["metadata"]["error"]
    assert reply["status"] == "failed" and error["status"] == 400 and len(error["message"]) <= 200

    upstream.default = Script(refusal="I can't help with that.")
    session_id, reply_id = await _ask(client, user)
    reply = await wait_for_reply(client, user, session_id, reply_id)
    assert reply["status"] == "failed" and reply["metadata"]["error"]["reason"] == "refusal"


async def test_cancel_stops_the_generation_and_keeps_the_text(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    upstream.default = Script(pieces=["word "] * 200, delay=0.05)
    user = await make_user(client)
    session_id, reply_id = await _ask(client, user)
    partial = await _wait_for_text(client, user, session_id, reply_id)
    assert partial["status"] == "streaming"

    response = await client.post(f"/chat/sessions/{session_id}/messages/{reply_id}/cancel", headers=user.headers)
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled" and cancelled["content"].startswith("word ")
    assert len(cancelled["content"]) < len("word ") * 200
    await asyncio.sleep(0.5)  # the text no longer grows (a cancelled generation writes nothing more)
    assert (await reply_of(client, user, session_id, reply_id))["content"] == cancelled["content"]
    again = await client.post(f"/chat/sessions/{session_id}/messages/{reply_id}/cancel", headers=user.headers)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    # the session takes a new reply at once
    retry = await client.post(f"/chat/sessions/{session_id}/replies", headers=user.headers, json={"agent": "helper"})
    assert retry.status_code == 202, retry.text


async def test_a_reply_that_outlives_its_first_lease_is_renewed_not_swept(
    app: FastAPI, client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generating process renews its replies' leases (one supervisor for all of them): a
    reply still being written when its first lease has run out is not taken for one whose
    process died."""
    monkeypatch.setattr(runner, "LEASE", timedelta(seconds=1))
    monkeypatch.setattr(runner, "RENEW_SECONDS", 0.2)
    upstream.default = Script(pieces=["x"] * 40, delay=0.1)  # ~4 s
    user = await make_user(client)
    session_id, reply_id = await _ask(client, user)
    started = time.monotonic()
    reply = await _wait_for_text(client, user, session_id, reply_id)
    while time.monotonic() - started < 2.5 and reply["status"] == "streaming":  # past its first lease
        reply = await reply_of(client, user, session_id, reply_id)
        assert await runner.sweep_expired(app.state.database) == 0
        await asyncio.sleep(0.1)
    assert reply["status"] == "streaming", "the generation ended before its first lease ran out"
    done = await wait_for_reply(client, user, session_id, reply_id)
    assert (done["status"], done["content"]) == ("complete", "x" * 40)


async def test_a_shutdown_does_not_wait_forever_for_a_sweep_stuck_in_a_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A test run hung in an app's shutdown: the reply sweeper was cancelled and then awaited,
    and a task cancelled inside a driver command can wait forever. The sweeper is now told to
    stop between commands and waited for a bounded time (background.stop_within)."""

    async def stuck_in_a_command(database: object) -> int:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.Event().wait()  # a cleanup that never ends, as a cancelled getMore's close
        return 0

    monkeypatch.setattr(runner, "sweep_expired", stuck_in_a_command)
    monkeypatch.setattr(runner, "CLOSE_TIMEOUT_SECONDS", 0.3)
    started = time.monotonic()
    async with asyncio.timeout(10):  # the old shutdown: forever (cut here at 10 s)
        async with runner.sweeping(cast(Database, None)):
            await asyncio.sleep(0)  # the sweep has started
    assert time.monotonic() - started < 5
