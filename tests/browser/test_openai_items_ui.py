"""Items written through /v1/conversations show in the UI as the chat, tool-call and
tool-result messages it renders for every other writer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.harness import DESKTOP, UI, Api

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

MakeUI = Callable[..., UI]

RUN = [
    {"role": "developer", "content": "Answer briefly."},
    {"role": "user", "content": "What's the weather in Lisbon?"},
    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Look it up."}]},
    {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Lisbon"}'},
    {"type": "function_call_output", "call_id": "call_1", "output": '{"temp_c": 21}'},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is **21 °C**."}]},
]


def test_an_agents_sdk_run_written_over_v1_renders_as_a_chat_with_a_tool_call(make_ui: MakeUI, api: Api) -> None:
    user = api.user("openai")
    body = {"metadata": {"title": "Agents SDK run"}, "items": RUN}
    created = api.http.post("/v1/conversations", json=body, headers=user.headers)
    assert created.status_code == 200, created.text
    ui = make_ui(DESKTOP)
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.show_chats()
    expect(ui.chats.locator(".platform-badge")).to_have_text(["openai"])
    ui.open_chat("Agents SDK run")
    page = ui.page
    expect(page.locator(".message-system summary.message-role")).to_have_text("System: Answer briefly.")
    expect(page.locator(".message-user .message-text")).to_have_text("What's the weather in Lisbon?")
    expect(page.locator(".tool-call-name")).to_have_text("Calls get_weather")
    tool = page.locator(".message-tool summary.message-role")
    expect(tool).to_have_text('Tool · get_weather: {"temp_c": 21}')
    expect(page.locator(".message-assistant .markdown strong")).to_have_text("21 °C")
    expect(page.locator(".message-assistant .message-text").first).to_have_text("Look it up.")
    ui.shot("an Agents SDK run written over /v1")
