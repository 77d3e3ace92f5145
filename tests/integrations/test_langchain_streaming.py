"""Issue 21: a turn driven by RunnableWithMessageHistory is stored whichever way the chain
runs (invoke, stream, ainvoke, astream), and a turn that stores nothing leaves no session.

The bug: stream()/astream() hand the history an AIMessageChunk, which was refused ("cannot
store a LangChain 'AIMessageChunk' message", logged by a LangChain callback, never raised):
the whole turn was lost, the human message included, and the empty session stayed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from chat_client import AsyncClient, Client
from chat_client.langchain import ChatServerMessageHistory
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from tests.integrations.conftest import Account
from tests.integrations.test_langchain import rest_messages

pytestmark = pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")

QUESTIONS = ("Hi, I am Ada.", "What is my name?", "Bye.")
REPLIES = ("Hello, Ada.", "You said your name is Ada.", "Goodbye.")
WEATHER_CALL = {"name": "get_weather", "args": {"city": "Lisbon"}, "id": "call_1", "type": "tool_call"}


def _chain(history: ChatServerMessageHistory, replies: Iterator[BaseMessage]) -> RunnableWithMessageHistory:
    model = GenericFakeChatModel(messages=replies)
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{input}")])
    return RunnableWithMessageHistory(
        prompt | model, lambda _: history, input_messages_key="input", history_messages_key="history"
    )


def _session_named(account: Account, name: str) -> dict[str, Any] | None:
    with httpx.Client(base_url=account.base_url, headers=account.headers) as rest:
        items: list[dict[str, Any]] = rest.get("/chat/sessions", params={"name": name}).json()["items"]
    return items[0] if items else None


def _stored_turns(account: Account, name: str) -> list[tuple[str, str]]:
    session = _session_named(account, name)
    assert session is not None, f"no session {name!r} was stored"
    return [(m["role"], m["content"]) for m in rest_messages(account, session["_id"])]


EXPECTED = [turn for q, r in zip(QUESTIONS, REPLIES, strict=True) for turn in (("user", q), ("assistant", r))]


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_every_sync_turn_is_stored_whether_the_chain_is_invoked_or_streamed(account: Account, mode: str) -> None:
    name = f"sync-{mode}"
    with Client(account.base_url, api_key=account.api_key(["read", "write"])) as client:
        history = ChatServerMessageHistory(session_name=name, client=client)
        chain = _chain(history, iter([AIMessage(r) for r in REPLIES]))
        config: Any = {"configurable": {"session_id": name}}
        for question, reply in zip(QUESTIONS, REPLIES, strict=True):
            if mode == "invoke":
                answer = chain.invoke({"input": question}, config=config).content
            else:
                answer = "".join(str(chunk.content) for chunk in chain.stream({"input": question}, config=config))
            assert answer == reply
    assert _stored_turns(account, name) == EXPECTED


@pytest.mark.parametrize("mode", ["ainvoke", "astream"])
async def test_every_async_turn_is_stored_whether_the_chain_is_invoked_or_streamed(account: Account, mode: str) -> None:
    name = f"async-{mode}"
    async with AsyncClient(account.base_url, api_key=account.api_key(["read", "write"])) as client:
        history = ChatServerMessageHistory(session_name=name, client=client)
        chain = _chain(history, iter([AIMessage(r) for r in REPLIES]))
        config: Any = {"configurable": {"session_id": name}}
        for question, reply in zip(QUESTIONS, REPLIES, strict=True):
            if mode == "ainvoke":
                answer = (await chain.ainvoke({"input": question}, config=config)).content
            else:
                chunks = [chunk async for chunk in chain.astream({"input": question}, config=config)]
                answer = "".join(str(chunk.content) for chunk in chunks)
            assert answer == reply
    assert _stored_turns(account, name) == EXPECTED


def test_a_streamed_tool_call_is_stored_as_the_ai_message_it_adds_up_to(account: Account) -> None:
    """What stream() hands the history is the sum of the chunks: its tool_call_chunks (the
    arguments arrive in pieces) are stored as the tool_calls they add up to."""
    pieces = [
        AIMessageChunk("", tool_call_chunks=[{"name": "get_weather", "args": '{"city": ', "id": "call_1", "index": 0}]),
        AIMessageChunk("", tool_call_chunks=[{"name": None, "args": '"Lisbon"}', "id": None, "index": 0}]),
    ]
    streamed = pieces[0] + pieces[1]
    with Client(account.base_url, api_key=account.api_key(["read", "write"])) as client:
        writer = ChatServerMessageHistory(session_name="streamed-tool", client=client)
        writer.add_messages([HumanMessage("Weather?"), streamed])
        reader = ChatServerMessageHistory(session_name="streamed-tool", client=client)
        stored = reader.messages
    assert [type(m) for m in stored] == [HumanMessage, AIMessage]
    assert isinstance(stored[1], AIMessage) and stored[1].tool_calls == [WEATHER_CALL]
    metadata = rest_messages(account, reader.session_id or "")[1]["metadata"]
    assert metadata["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'}}
    ]


def test_a_turn_the_server_refuses_leaves_no_session_behind(account: Account) -> None:
    """Reading the history of a new name creates nothing, and the first write creates the
    session in the same transaction as its messages: a refused write (metadata with a `$`
    key) stores nothing at all."""
    with Client(account.base_url, api_key=account.api_key(["read", "write"])) as client:
        history = ChatServerMessageHistory(session_name="refused", client=client)
        assert history.messages == []
        with pytest.raises(Exception, match="must not start with"):
            history.add_messages([HumanMessage("hi"), AIMessage("x", additional_kwargs={"$bad": 1})])
        assert client.find_session("refused") is None
    assert _session_named(account, "refused") is None


async def test_an_async_turn_the_server_refuses_leaves_no_session_behind(account: Account) -> None:
    async with AsyncClient(account.base_url, api_key=account.api_key(["read", "write"])) as client:
        history = ChatServerMessageHistory(session_name="refused-async", client=client)
        assert await history.aget_messages() == []
        with pytest.raises(Exception, match="must not start with"):
            await history.aadd_messages([HumanMessage("hi"), AIMessage("x", additional_kwargs={"$bad": 1})])
    assert _session_named(account, "refused-async") is None
