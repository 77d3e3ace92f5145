"""The MCP tools: their inputs (validated like the REST API's, with the same types) and what
each does, through chat's service. A tool answers the REST response model it corresponds to."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field

from app.assistant.service import Assistant
from app.auth.principal import READ, WRITE, AuthenticatedUser
from app.chat import search, service, session_list
from app.chat.metadata import Metadata
from app.chat.replies import RepliesUnavailable
from app.chat.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_BATCH,
    AgentName,
    Content,
    MessageCreate,
    MessageOut,
    MessagesPageSize,
    ModelName,
    PageSize,
    Platform,
    ReplyTarget,
    SessionCreate,
    SessionName,
    Title,
)
from app.chat.search_schemas import MAX_QUERY_CHARS
from app.core.cursors import CursorCodec
from app.core.db import Database
from app.core.types import RequestModel

Cursor = Annotated[str, Field(max_length=512, description="next_cursor of the previous page")]
SessionId = Annotated[str, Field(max_length=64, description="The session's _id")]


@dataclass(frozen=True)
class Caller:
    user: AuthenticatedUser
    database: Database
    cursors: CursorCodec
    assistant: Assistant | None = None  # when a model is configured


class ListSessionsInput(RequestModel):
    platform: Platform | None = Field(default=None, description="Only this platform's sessions")
    limit: PageSize = DEFAULT_PAGE_SIZE
    cursor: Cursor | None = None


class GetOrCreateSessionInput(RequestModel):
    name: SessionName = Field(description="Your key for the session: the same name finds the same session")
    platform: Platform = "mcp"
    title: Title | None = None
    metadata: Metadata = Field(default_factory=dict)


class ReadMessagesInput(RequestModel):
    session_id: SessionId
    limit: MessagesPageSize = DEFAULT_PAGE_SIZE
    cursor: Cursor | None = None
    after_seq: int | None = Field(default=None, ge=0, description="Only messages after this seq, oldest first")


class SearchMessagesInput(RequestModel):
    q: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="Words to find")
    session_id: SessionId | None = Field(default=None, description="Only in this session")
    platform: Platform | None = Field(default=None, description="Only in this platform's sessions")
    limit: PageSize = DEFAULT_PAGE_SIZE
    cursor: Cursor | None = None


class AppendMessagesInput(RequestModel):
    session_id: SessionId
    messages: list[MessageCreate] = Field(min_length=1, max_length=MAX_BATCH)


class AskAgentInput(RequestModel):
    session_id: SessionId
    content: Content = Field(min_length=1, description="Your message; the reply comes after it")
    agent: AgentName | None = Field(default=None, description="The agent that replies (default: the session's)")
    model: ModelName | None = Field(default=None, description="A model by name, when the server allows any")


async def _list_sessions(caller: Caller, given: BaseModel) -> str:
    assert isinstance(given, ListSessionsInput)
    page = await session_list.list_sessions(
        caller.database, caller.cursors, caller.user.id, given.platform, given.limit, given.cursor
    )
    return page.model_dump_json(by_alias=True)


async def _get_or_create_session(caller: Caller, given: BaseModel) -> str:
    assert isinstance(given, GetOrCreateSessionInput)
    body = SessionCreate(name=given.name, platform=given.platform, title=given.title, metadata=given.metadata)
    return (await service.create_session(caller.database, caller.user.id, body, None)).body


async def _read_messages(caller: Caller, given: BaseModel) -> str:
    assert isinstance(given, ReadMessagesInput)
    page = await service.list_messages(
        caller.database, caller.cursors, given.session_id, caller.user.id, given.limit, given.cursor, given.after_seq
    )
    return page.json().decode()


async def _search_messages(caller: Caller, given: BaseModel) -> str:
    assert isinstance(given, SearchMessagesInput)
    scope = await search.scope_of(caller.database, caller.user.id, given.session_id, given.platform)
    page = await search.search(caller.database, caller.cursors, scope, given.q, given.limit, given.cursor)
    return page.model_dump_json(by_alias=True)


async def _append_messages(caller: Caller, given: BaseModel) -> str:
    assert isinstance(given, AppendMessagesInput)
    stored = await service.append_messages(
        caller.database, given.session_id, caller.user.id, given.messages, None, as_list=True
    )
    return stored.body


async def _ask_agent(caller: Caller, given: BaseModel) -> str:
    assert isinstance(given, AskAgentInput)
    if caller.assistant is None:
        raise RepliesUnavailable()
    target = ReplyTarget(agent=given.agent, model=given.model)
    message = MessageCreate(content=given.content)
    _, reply_id = await caller.assistant.ask(caller.user.id, given.session_id, message, target, None)
    async for item in caller.assistant.follow(reply_id):
        if isinstance(item, MessageOut):
            return item.model_dump_json()
    raise RepliesUnavailable("the reply was deleted before it ended")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    inputs: type[BaseModel]
    scope: str  # READ or WRITE: a read-only API key sees and calls only READ tools
    run: Callable[[Caller, BaseModel], Awaitable[str]]
    needs_model: bool = False  # offered only when a model is configured (MODEL_BASE_URL)

    def input_schema(self) -> dict[str, Any]:
        return self.inputs.model_json_schema()

    def structured(self, body: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(body)
        return result


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "list_sessions",
        "Your chat sessions, most recently active first: {items: [session], next_cursor}. "
        "Pass next_cursor back as cursor for the next page.",
        ListSessionsInput,
        READ,
        _list_sessions,
    ),
    ToolSpec(
        "get_or_create_session",
        "The session with this name, created when you have none (get-or-create): a session "
        "{_id, name, title, platform, metadata, message_count, ...}.",
        GetOrCreateSessionInput,
        WRITE,
        _get_or_create_session,
    ),
    ToolSpec(
        "read_messages",
        "A session's messages: by default the newest page first (oldest to newest inside it), "
        "with after_seq the ones after that seq, oldest first. {items: [message], next_cursor}.",
        ReadMessagesInput,
        READ,
        _read_messages,
    ),
    ToolSpec(
        "search_messages",
        "Your messages and session titles holding every word of q (case and accents ignored, the "
        "last word may be a word's start), newest first: {items: [{kind: message|title, session, "
        "message (null for a title), snippet: {text, highlights}}], next_cursor}. A page may hold "
        "fewer hits than limit: follow next_cursor until it is null.",
        SearchMessagesInput,
        READ,
        _search_messages,
    ),
    ToolSpec(
        "append_messages",
        "Append 1-100 messages ({role: user|assistant|system|tool, content, metadata?}) to a "
        "session in one transaction, with consecutive seqs: {items: [message]}.",
        AppendMessagesInput,
        WRITE,
        _append_messages,
    ),
    ToolSpec(
        "ask_agent",
        "Store your message in a session and have the server's model reply (an agent, by default "
        "the session's): waits for the reply and answers it, a message {role: assistant, content, "
        "status: complete|failed|cancelled, metadata: {model, agent, usage, error?}}.",
        AskAgentInput,
        WRITE,
        _ask_agent,
        needs_model=True,
    ),
)
TOOLS_BY_NAME = {tool.name: tool for tool in TOOLS}


def visible_tools(caller: Caller) -> list[ToolSpec]:
    return [
        tool
        for tool in TOOLS
        if tool.scope in caller.user.scopes and (caller.assistant is not None or not tool.needs_model)
    ]
