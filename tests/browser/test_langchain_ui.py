"""A conversation kept by LangChain (RunnableWithMessageHistory over the client package's
history) reads back in the chat UI like any other chat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.harness import DESKTOP, UI, Api
from tests.server_process import ServerProcess

pytest.importorskip("playwright.sync_api")
from chat_client.langchain import ChatServerMessageHistory  # noqa: E402
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel  # noqa: E402
from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder  # noqa: E402
from langchain_core.runnables.history import RunnableWithMessageHistory  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

MakeUI = Callable[..., UI]


@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")
def test_a_langchain_conversation_appears_in_the_ui(make_ui: MakeUI, api: Api, server: ServerProcess) -> None:
    user = api.user("lc")
    model = FakeMessagesListChatModel(responses=[AIMessage("Lisbon in May is lovely."), AIMessage("Take the 28 tram.")])
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{input}")])
    history = ChatServerMessageHistory(
        session_name="trip-agent", base_url=server.base_url, username=user.username, password=user.password
    )
    chain = RunnableWithMessageHistory(
        prompt | model, lambda _: history, input_messages_key="input", history_messages_key="history"
    )
    config: Any = {"configurable": {"session_id": "trip-agent"}}
    chain.invoke({"input": "When should I visit Lisbon?"}, config=config)
    chain.invoke({"input": "How do I get around?"}, config=config)
    history.close()

    ui = make_ui(DESKTOP)
    ui.goto()
    ui.log_in(user.username, user.password)
    ui.open_chat("trip-agent")
    expect(ui.messages).to_have_text(
        ["When should I visit Lisbon?", "Lisbon in May is lovely.", "How do I get around?", "Take the 28 tram."]
    )
    ui.shot("langchain conversation")
