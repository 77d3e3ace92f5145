"""The LangChain history (`chat_client.langchain`, the `[langchain]` extra) against a live server:
LangChain's own RunnableWithMessageHistory driving a fake chat model from langchain_core,
messages that round-trip exactly, reads that fetch only what is new, and clear()."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from chat_client import AsyncClient, Client
from chat_client.langchain import ChatServerMessageHistory
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from tests.integrations.conftest import Account
from tests.integrations.flaky import Faults, FlakyTransport

# RunnableWithMessageHistory is what the issue asks to be tested with; langchain-core 1.x marks it
# deprecated in favour of LangGraph persistence, which is not a dependency here.
pytestmark = pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")

TOOL_TURN: list[BaseMessage] = [
    SystemMessage("You are brief."),
    HumanMessage("What is the weather in Lisbon?", id="h-1"),
    AIMessage(
        "",
        tool_calls=[
            {"name": "get_weather", "args": {"city": "Lisbon", "days": 2}, "id": "call_1", "type": "tool_call"}
        ],
        usage_metadata={"input_tokens": 12, "output_tokens": 7, "total_tokens": 19},
        response_metadata={"model_name": "fake-1"},
    ),
    ToolMessage('{"temp_c": 21}', tool_call_id="call_1", name="get_weather"),
    ToolMessage("timeout", tool_call_id="call_2", status="error", artifact={"raw": [1, 2]}),
    AIMessage("It is **21 °C**.", additional_kwargs={"refusal": None}),
    HumanMessage(
        [{"type": "text", "text": "And this picture?"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    ),
    HumanMessage("   "),
]


class SeenByModel(BaseCallbackHandler):
    """How many messages the chat model was given at each call."""

    def __init__(self) -> None:
        self.history_lengths: list[int] = []

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any) -> None:
        self.history_lengths.append(len(messages[0]))


def rest_messages(account: Account, session_id: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=account.base_url, headers=account.headers) as rest:
        page = rest.get(f"/chat/sessions/{session_id}/messages", params={"after_seq": 0, "limit": 1000}).json()
    items: list[dict[str, Any]] = page["items"]
    return items


def test_every_kind_of_message_round_trips_exactly_through_role_content_and_metadata(account: Account) -> None:
    key = account.api_key(["read", "write"])
    writer = ChatServerMessageHistory(session_name="round-trip", base_url=account.base_url, api_key=key)
    writer.add_messages(TOOL_TURN)
    with Client(account.base_url, api_key=key) as client:
        reader = ChatServerMessageHistory(session_name="round-trip", client=client)
        assert reader.messages == TOOL_TURN

    stored = rest_messages(account, writer.session_id or "")
    assert [m["role"] for m in stored] == ["system", "user", "assistant", "tool", "tool", "assistant", "user", "user"]
    assert stored[2]["content"] == "" and stored[2]["metadata"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Lisbon", "days": 2}'},
        }
    ]
    assert stored[3]["metadata"] == {"name": "get_weather", "tool_call_id": "call_1"}
    assert stored[6]["content"] == "And this picture?"
    writer.close()


def test_runnable_with_message_history_over_several_turns_reads_only_what_is_new(account: Account) -> None:
    replies = [AIMessage("Hello, Ada."), AIMessage("You said your name is Ada."), AIMessage("Goodbye.")]
    model = FakeMessagesListChatModel(responses=replies)
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{input}")])
    faults = Faults()
    client = Client(
        account.base_url,
        api_key=account.api_key(["read", "write"]),
        http_client=httpx.Client(transport=FlakyTransport(faults)),
    )
    histories: dict[str, ChatServerMessageHistory] = {}

    def history_for(session_id: str) -> ChatServerMessageHistory:
        return histories.setdefault(session_id, ChatServerMessageHistory(session_name=session_id, client=client))

    chain = RunnableWithMessageHistory(
        prompt | model, history_for, input_messages_key="input", history_messages_key="history"
    )
    seen = SeenByModel()
    config: Any = {"configurable": {"session_id": "lc-agent-1"}, "callbacks": [seen]}
    answers = [
        chain.invoke({"input": text}, config=config).content for text in ("Hi, I am Ada.", "What is my name?", "Bye.")
    ]
    assert answers == ["Hello, Ada.", "You said your name is Ada.", "Goodbye."]

    history = histories["lc-agent-1"]
    stored = rest_messages(account, history.session_id or "")
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "Hi, I am Ada."),
        ("assistant", "Hello, Ada."),
        ("user", "What is my name?"),
        ("assistant", "You said your name is Ada."),
        ("user", "Bye."),
        ("assistant", "Goodbye."),
    ]
    reads = [r for r in faults.seen if r.method == "GET" and r.url.path.endswith("/messages")]
    # each turn asks only for newer ones (the first finds no session of the name yet: nothing to read)
    assert [r.url.params["after_seq"] for r in reads] == ["2", "4"]
    assert [(m.type, m.content) for m in history.messages] == [
        ("human" if m["role"] == "user" else "ai", m["content"]) for m in stored
    ]
    assert seen.history_lengths == [1, 3, 5]  # the model was shown the whole conversation each turn

    history.clear()
    assert rest_messages(account, history.session_id or "") == []
    assert history.messages == []
    assert chain.invoke({"input": "Anyone there?"}, config=config).content == "Hello, Ada."
    assert [m["seq"] for m in rest_messages(account, history.session_id or "")] == [1, 2]
    client.close()


async def test_the_async_methods_are_native_and_see_each_others_writes(account: Account) -> None:
    key = account.api_key(["read", "write"])
    model = FakeMessagesListChatModel(responses=[AIMessage("one"), AIMessage("two")])
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{input}")])
    async with AsyncClient(account.base_url, api_key=key) as client:
        history = ChatServerMessageHistory(session_name="async-agent", client=client, platform="agent")
        chain = RunnableWithMessageHistory(
            prompt | model, lambda _: history, input_messages_key="input", history_messages_key="history"
        )
        config: Any = {"configurable": {"session_id": "async-agent"}}
        assert (await chain.ainvoke({"input": "first"}, config=config)).content == "one"
        other = ChatServerMessageHistory(session_name="async-agent", client=client)
        await other.aadd_messages([HumanMessage("from elsewhere")])
        assert (await chain.ainvoke({"input": "second"}, config=config)).content == "two"
        contents = [m.content for m in await history.aget_messages()]
        assert contents == ["first", "one", "from elsewhere", "second", "two"]
        assert (await client.get_session(history.session_id or "")).platform == "agent"
        await history.aclear()
        assert (await client.get_session(history.session_id or "")).message_count == 0
