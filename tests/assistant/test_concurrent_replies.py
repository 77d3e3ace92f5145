"""20 users asking at once (more than MODEL_MAX_CONCURRENT: some wait their turn): every
reply completes with exactly the text the upstream sent, none is left streaming, no 5xx."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from bson import ObjectId
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.config import Settings
from tests.assistant.fake_upstream import FakeUpstream, Script
from tests.assistant.helpers import wait_for_reply
from tests.factories import TestUser, make_session, make_user
from tests.stress import scaled

USERS = scaled(20, 50)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"model_max_concurrent": 8})


async def test_concurrent_generations_for_many_users_all_complete_exactly(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    upstream.default = Script(echo=True, delay=0.01)
    users = [await make_user(client) for _ in range(USERS)]
    sessions = [(await make_session(client, user))["_id"] for user in users]
    questions = [" ".join(f"u{n}w{i}" for i in range(30)) for n in range(USERS)]

    async def ask(user: TestUser, session_id: str, question: str) -> dict[str, Any]:
        response = await client.post(
            f"/chat/sessions/{session_id}/messages",
            json={"content": question, "reply": {"agent": "helper"}},
            headers=user.headers,
        )
        assert response.status_code == 201, response.text
        return await wait_for_reply(client, user, session_id, response.json()["reply"]["_id"], deadline=60)

    replies = await asyncio.gather(*(ask(u, s, q) for u, s, q in zip(users, sessions, questions, strict=True)))
    assert [r["status"] for r in replies] == ["complete"] * USERS
    assert [r["content"] for r in replies] == questions


async def test_an_ask_waits_for_its_turn_to_write_where_a_plain_post_gives_up(
    app: FastAPI, client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    """A burst of asks (50 at once in make bench) queued for the database's transaction slots
    longer than DB_TIMEOUT_SECONDS, and some answered 503: an ask now waits for its turn up to
    ASK_WAIT_SECONDS (a reply takes seconds anyway), while any other write still gives up then."""
    user = await make_user(client)
    session_id, other_id = [(await make_session(client, user))["_id"] for _ in range(2)]
    database = app.state.database
    async with contextlib.AsyncExitStack() as held:  # every slot taken, for longer than the timeout
        for _ in range(app.state.settings.db_max_transactions):
            await held.enter_async_context(database.transaction_slots.hold("test"))
        ask = asyncio.create_task(
            client.post(
                f"/chat/sessions/{session_id}/messages",
                json={"content": "queued", "reply": {"agent": "helper"}},
                headers=user.headers,
            )
        )
        plain = await client.post(f"/chat/sessions/{other_id}/messages", json={"content": "x"}, headers=user.headers)
        assert plain.status_code == 503
        done, _ = await asyncio.wait({ask}, timeout=1.0)  # the ask waited past DB_TIMEOUT_SECONDS too
        assert not done
    asked = await ask
    assert asked.status_code == 201, asked.text
    reply = await wait_for_reply(client, user, session_id, asked.json()["reply"]["_id"])
    assert reply["status"] == "complete"


async def test_one_user_s_burst_of_asks_does_not_queue_past_their_limit(
    app: FastAPI, client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    """Asks wait for a transaction slot (shared by every user's writes) up to ASK_WAIT_SECONDS:
    a user with MODEL_MAX_PER_USER asks waiting is refused at once, not queued behind them."""
    limit = app.state.settings.model_max_per_user
    user, other = await make_user(client), await make_user(client)
    sessions = [(await make_session(client, user))["_id"] for _ in range(limit + 1)]
    other_session = (await make_session(client, other))["_id"]

    def ask(who: TestUser, session_id: str) -> asyncio.Task[Any]:
        body = {"content": "queued", "reply": {"agent": "helper"}}
        return asyncio.create_task(client.post(f"/chat/sessions/{session_id}/messages", json=body, headers=who.headers))

    database = app.state.database
    async with contextlib.AsyncExitStack() as held:  # every slot taken: the asks wait
        for _ in range(app.state.settings.db_max_transactions):
            await held.enter_async_context(database.transaction_slots.hold("test"))
        waiting = [ask(user, session_id) for session_id in sessions[:limit]]
        others = ask(other, other_session)
        async with asyncio.timeout(10):  # until both of the user's asks are waiting
            while app.state.assistant._storing[ObjectId(user.id)] < limit:
                await asyncio.sleep(0.01)
        refused = await ask(user, sessions[-1])
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert not others.done()  # another user's ask waits its turn, not refused
    assert [(await task).status_code for task in [*waiting, others]] == [201] * (limit + 1)
