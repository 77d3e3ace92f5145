"""What is sent upstream: instructions first, newest-last within MODEL_CONTEXT_CHARS, tool
calls and results as OpenAI sends them, never a tool result without its call."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient

from app.core.config import Settings
from tests.assistant.fake_upstream import FakeUpstream
from tests.assistant.helpers import wait_for_reply
from tests.factories import TestUser, make_session, make_user

CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"model_context_chars": 1000})


async def _history_sent(client: AsyncClient, user: TestUser, upstream: FakeUpstream, messages: list[Any]) -> Any:
    session_id = (await make_session(client, user))["_id"]
    stored = await client.post(
        f"/chat/sessions/{session_id}/messages/batch", json={"messages": messages}, headers=user.headers
    )
    assert stored.status_code == 201, stored.text
    asked = await client.post(f"/chat/sessions/{session_id}/replies", json={"agent": "helper"}, headers=user.headers)
    assert asked.status_code == 202, asked.text
    assert (await wait_for_reply(client, user, session_id, asked.json()["_id"]))["status"] == "complete"
    return upstream.last_messages()


async def test_oldest_dropped_first_and_tool_calls_sent_as_such(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    user = await make_user(client)
    sent = await _history_sent(
        client,
        user,
        upstream,
        [
            {"role": "user", "content": "A" * 600},
            {"role": "assistant", "content": "", "metadata": {"tool_calls": [CALL]}},
            {"role": "tool", "content": "42", "metadata": {"tool_call_id": "call_1"}},
            {"role": "user", "content": "B" * 300},
        ],
    )
    assert sent == [
        {"role": "system", "content": "You are helpful."},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
        {"role": "user", "content": "B" * 300},
    ]


async def test_a_tool_result_is_never_sent_without_its_call(
    client: AsyncClient, upstream: FakeUpstream, agent: dict[str, Any]
) -> None:
    user = await make_user(client)
    long_call = {**CALL, "function": {"name": "lookup", "arguments": "x" * 700}}
    sent = await _history_sent(
        client,
        user,
        upstream,
        [
            {"role": "assistant", "content": "", "metadata": {"tool_calls": [long_call]}},
            {"role": "tool", "content": "42", "metadata": {"tool_call_id": "call_1"}},
            {"role": "user", "content": "B" * 300},
        ],
    )
    assert sent == [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "B" * 300}]
