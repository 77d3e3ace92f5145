"""/v1/chat/completions and /v1/models through the official `openai` SDK, against issue 16's
fake upstream: both modes, an agent's name as the model, recording into a named session with
only the new messages stored each turn."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from httpx import AsyncClient
from openai import AsyncOpenAI

from tests.assistant.fake_upstream import FakeUpstream
from tests.conftest import StartApp
from tests.factories import TestUser


async def session_messages(client: AsyncClient, user: TestUser, name: str) -> list[dict[str, Any]]:
    found = (await client.get("/chat/sessions", params={"name": name}, headers=user.headers)).json()["items"]
    assert len(found) == 1
    page = await client.get(f"/chat/sessions/{found[0]['_id']}/messages", headers=user.headers)
    messages: list[dict[str, Any]] = page.json()["items"]
    return messages


async def test_models_lists_the_agents(sdk: AsyncOpenAI, agent: dict[str, Any]) -> None:
    assert [m.id async for m in sdk.models.list()] == ["helper"]


async def test_agent_as_model_both_modes_recorded_turn_by_turn(
    sdk: AsyncOpenAI, client: AsyncClient, user: TestUser, agent: dict[str, Any], upstream: FakeUpstream
) -> None:
    headers = {"X-Chat-Session": "trip"}
    history: list[Any] = [{"role": "user", "content": "Hi"}]
    first = await sdk.chat.completions.create(model="helper", messages=history, extra_headers=headers)
    assert first.choices[0].message.content == "Hello, world!"
    assert upstream.last_messages()[0] == {"role": "system", "content": "You are helpful."}
    assert upstream.requests[-1]["model"] == "fake-small"

    history += [{"role": "assistant", "content": "Hello, world!"}, {"role": "user", "content": "Again"}]
    stream = await sdk.chat.completions.create(model="helper", messages=history, stream=True, extra_headers=headers)
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == "Hello, world!"

    stored = await session_messages(client, user, "trip")
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "Hi"),
        ("assistant", "Hello, world!"),
        ("user", "Again"),
        ("assistant", "Hello, world!"),
    ]


async def test_tool_calls_in_the_history_are_stored_as_the_ui_renders_them(
    sdk: AsyncOpenAI, client: AsyncClient, user: TestUser, agent: dict[str, Any]
) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    history: list[Any] = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
    ]
    await sdk.chat.completions.create(model="helper", messages=history, user="weather-bot")
    stored = await session_messages(client, user, "weather-bot")
    assert [(m["role"], m["content"], m["metadata"]) for m in stored[:3]] == [
        ("user", "Weather in Paris?", {}),
        ("assistant", "", {"tool_calls": [call]}),
        ("tool", "21 C", {"tool_call_id": "call_1"}),
    ]
    await sdk.chat.completions.create(
        model="helper", messages=[*history, {"role": "user", "content": "Thanks"}], user="weather-bot"
    )
    assert len(await session_messages(client, user, "weather-bot")) == 6


async def test_refusals_in_openai_shape(
    sdk: AsyncOpenAI, client: AsyncClient, user: TestUser, agent: dict[str, Any]
) -> None:
    with pytest.raises(openai.NotFoundError):
        await sdk.chat.completions.create(model="no-such-agent", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.chat.completions.create(model="helper", messages=[{"role": "robot", "content": "x"}])  # type: ignore[misc,list-item]
    assert bad.value.param == "messages[0].role"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as bad_name:
        await sdk.chat.completions.create(model="helper", messages=[{"role": "user", "content": "x"}], user="a\x01b")
    assert bad_name.value.param == "user"  # type: ignore[attr-defined]
    assert (await client.get("/chat/sessions", headers=user.headers)).json()["items"] == []


async def test_unnamed_calls_are_new_sessions_or_none_with_recording_off(
    sdk: AsyncOpenAI, client: AsyncClient, user: TestUser, agent: dict[str, Any], start_app: StartApp
) -> None:
    hello: Any = [{"role": "user", "content": "Hello there"}]
    await sdk.chat.completions.create(model="helper", messages=hello)
    await sdk.chat.completions.create(model="helper", messages=hello, metadata={"session": "named"}, store=True)
    sessions = (await client.get("/chat/sessions", headers=user.headers)).json()["items"]
    assert sorted((s["title"], s["name"] or "", s["message_count"]) for s in sessions) == [
        ("Hello there", "", 2),
        ("Hello there", "named", 2),
    ]
    quiet = await start_app(chat_completions_record=False)
    answer = await quiet.post("/v1/chat/completions", json={"model": "helper", "messages": hello}, headers=user.headers)
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "Hello, world!"
    assert len((await client.get("/chat/sessions", headers=user.headers)).json()["items"]) == 2
