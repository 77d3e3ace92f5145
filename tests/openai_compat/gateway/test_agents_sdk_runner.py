"""The OpenAI Agents SDK's `Runner.run` with an `OpenAIChatCompletionsModel` pointed at our
gateway (the upstream: a fake that calls one tool): two turns, a tool call and its result, the
whole run recorded and visible over /chat; and a streamed tool call gathered into the record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from httpx import AsyncClient
from openai import AsyncOpenAI

from tests.factories import TestUser
from tests.openai_compat.gateway.tool_upstream import CALL_ID, ToolUpstream


@pytest.fixture
def upstream() -> Iterator[ToolUpstream]:
    with ToolUpstream() as fake:
        yield fake


@function_tool
def get_weather(city: str) -> str:
    """The temperature in a city."""
    return "21 C"


async def recorded(client: AsyncClient, user: TestUser, name: str) -> list[tuple[str, str, dict[str, Any]]]:
    (session,) = (await client.get("/chat/sessions", params={"name": name}, headers=user.headers)).json()["items"]
    page = (await client.get(f"/chat/sessions/{session['_id']}/messages", headers=user.headers)).json()
    return [(m["role"], m["content"], m["metadata"]) for m in page["items"]]


async def test_runner_two_turns_with_a_tool_call_recorded_whole(
    sdk: AsyncOpenAI, client: AsyncClient, user: TestUser, agent: dict[str, Any]
) -> None:
    set_tracing_disabled(True)
    model = OpenAIChatCompletionsModel(model="helper", openai_client=sdk)
    settings = ModelSettings(extra_headers={"X-Chat-Session": "agent-run"})
    weather = Agent(name="weather", model=model, tools=[get_weather], model_settings=settings)

    first = await Runner.run(weather, "What is the weather in Paris?")
    assert first.final_output == "It is 21 C in Paris."
    second = await Runner.run(weather, [*first.to_input_list(), {"role": "user", "content": "Thanks!"}])
    assert second.final_output == "Anything else?"

    call = {"id": CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    rows = await recorded(client, user, "agent-run")
    assert [(role, content) for role, content, _ in rows] == [
        ("user", "What is the weather in Paris?"),
        ("assistant", ""),
        ("tool", "21 C"),
        ("assistant", "It is 21 C in Paris."),
        ("user", "Thanks!"),
        ("assistant", "Anything else?"),
    ]
    assert rows[1][2]["tool_calls"][0]["function"] == call["function"]
    assert rows[2][2] == {"tool_call_id": CALL_ID}


async def test_a_streamed_tool_call_is_passed_on_and_recorded(
    sdk: AsyncOpenAI, client: AsyncClient, user: TestUser, agent: dict[str, Any]
) -> None:
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    stream = await sdk.chat.completions.create(
        model="helper", messages=[{"role": "user", "content": "weather?"}], tools=tools, stream=True, user="streamed"
    )
    arguments = ""
    async for chunk in stream:
        for delta_call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments += delta_call.function.arguments or "" if delta_call.function else ""
    assert arguments == '{"city": "Paris"}'
    rows = await recorded(client, user, "streamed")
    assert rows[1][0] == "assistant" and rows[1][2]["tool_calls"] == [
        {"id": CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]
