"""20 users asking at once (more than MODEL_MAX_CONCURRENT: some wait their turn): every
reply completes with exactly the text the upstream sent, none is left streaming, no 5xx."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
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
